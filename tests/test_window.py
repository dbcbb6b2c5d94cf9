"""Caffe's output-size arithmetic, against hand-computed numbers."""

from caffe_atrous.core.window import Window, conv_out, deconv_out, pool_out


def test_convolution_rounds_down():
    # (224 + 2*3 - 7) / 2 = 111.5 -> 111, + 1 = 112 (ResNet conv1)
    assert conv_out(224, Window((7, 7), (2, 2), (3, 3)), 0) == 112
    # 3x3 dilation 2 pad 2 keeps the size: effective kernel 5
    assert conv_out(28, Window((3, 3), (1, 1), (2, 2), (2, 2)), 0) == 28
    # valid 7x7 fc6 dilated x4: 28 + 0 - 25 + 1 = 4
    assert conv_out(28, Window((7, 7), (1, 1), (0, 0), (4, 4)), 1) == 4


def test_asymmetric_kernel_uses_each_axis():
    w = Window(kernel=(1, 7), pad=(0, 3), dilation=(1, 2))
    assert w.effective_kernel(0) == 1 and w.effective_kernel(1) == 13
    assert conv_out(17, w, 0) == 17       # height: 1x1 tap
    assert conv_out(17, w, 1) == 11       # width: 17 + 6 - 13 + 1


def test_pooling_rounds_up_and_clips_last_window():
    # (112 + 2 - 3) / 2 = 55.5 -> ceil 56, + 1 = 57; last window starts at 112 >= 112 + 1? no
    assert pool_out(112, Window((3, 3), (2, 2), (1, 1)), 0) == 57
    # ceil((113 - 3) / 2) + 1 = 56 with no padding (ResNet pool1 in Kaiming's prototxt)
    assert pool_out(112, Window((3, 3), (2, 2)), 0) == 56
    # clip: H=4, k=2, s=2, p=1: ceil(4/2)+1 = 3, but (3-1)*2 = 4 >= 4 + 1? no -> 3
    assert pool_out(4, Window((2, 2), (2, 2), (1, 1)), 0) == 3
    # clip: H=5, k=3, s=2, p=1: ceil(4/2)+1 = 3; (3-1)*2 = 4 >= 5+1? no -> 3
    assert pool_out(5, Window((3, 3), (2, 2), (1, 1)), 0) == 3
    # clip applies: H=6, k=2, s=2, p=1: ceil(6/2)+1 = 4; (4-1)*2 = 6 >= 6+1? no -> 4
    assert pool_out(6, Window((2, 2), (2, 2), (1, 1)), 0) == 4
    # clip applies: H=3, k=1, s=2, p=1: ceil(4/2)+1 = 3; (3-1)*2 = 4 >= 3+1 -> 2
    assert pool_out(3, Window((1, 1), (2, 2), (1, 1)), 0) == 2


def test_pooling_floor_mode():
    assert pool_out(112, Window((3, 3), (2, 2)), 0, ceil_mode=False) == 55


def test_deconvolution():
    # FCN upscore: stride 2, kernel 4: 2 * (16 - 1) + 4 = 34
    assert deconv_out(16, Window((4, 4), (2, 2)), 0) == 34
    assert deconv_out(16, Window((4, 4), (2, 2), (1, 1)), 0) == 32
