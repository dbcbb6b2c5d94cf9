"""The geometry of one window's rewrite, against hand-computed numbers."""

from caffe_atrous.rewrite.dilate import EXACT, SEED, dilate_conv, unstride_pool
from caffe_atrous.core.window import Window, conv_out

W33S2 = Window((3, 3), (2, 2), (1, 1))


def test_seed_convention_on_the_seed_example():
    # conv4_1_3x3: 3x3 stride 2 pad 1 -> stride 1 dilation 2 pad 2
    new, notes = dilate_conv(W33S2, (1, 1), (2, 2), SEED)
    assert new == Window((3, 3), (1, 1), (2, 2), (2, 2)) and notes == []
    # conv4_2_3x3 reads the x2 blob: dilation 2 pad 2
    new, _ = dilate_conv(Window((3, 3), pad=(1, 1)), (2, 2), (1, 1), SEED)
    assert new == Window((3, 3), (1, 1), (2, 2), (2, 2))
    # conv5_1_3x3 reads x2 and loses stride 2: dilation 4 pad 4 (PSPNet)
    new, _ = dilate_conv(W33S2, (2, 2), (2, 2), SEED)
    assert new == Window((3, 3), (1, 1), (4, 4), (4, 4))


def test_exact_rule_keeps_the_strided_layers_dilation():
    new, _ = dilate_conv(W33S2, (1, 1), (2, 2), EXACT)
    assert new == Window((3, 3), (1, 1), (1, 1), (1, 1))
    new, _ = dilate_conv(W33S2, (2, 2), (2, 2), EXACT)
    assert new == Window((3, 3), (1, 1), (2, 2), (2, 2))


def test_both_conventions_keep_the_exact_output_size():
    for w in (W33S2, Window((7, 7), (2, 2), (3, 3)), Window((3, 3), (2, 2), (0, 0)),
              Window((5, 5), (2, 2), (2, 2), (2, 2))):
        for m in ((1, 1), (2, 2)):
            exact, _ = dilate_conv(w, m, (2, 2), EXACT)
            seed, _ = dilate_conv(w, m, (2, 2), SEED)
            for h in (33, 57, 65):
                assert conv_out(h, exact, 0) == conv_out(h, seed, 0), (w, m, h)


def test_seven_by_seven_stem():
    # ResNet conv1 7x7/2 pad 3 with its stride removed: exact pad 3; seed dilation 2 pad 6
    assert dilate_conv(Window((7, 7), (2, 2), (3, 3)), (1, 1), (2, 2), EXACT)[0].pad == (3, 3)
    seed = dilate_conv(Window((7, 7), (2, 2), (3, 3)), (1, 1), (2, 2), SEED)[0]
    assert (seed.dilation, seed.pad) == ((2, 2), (6, 6))


def test_asymmetric_kernel_scales_only_axes_with_kernel_above_one():
    w = Window(kernel=(1, 7), pad=(0, 3))
    new, _ = dilate_conv(w, (2, 2), (1, 1), SEED)
    assert new.dilation == (1, 2) and new.pad == (0, 6)
    w = Window(kernel=(7, 1), pad=(3, 0))
    new, _ = dilate_conv(w, (4, 4), (1, 1), EXACT)
    assert new.dilation == (4, 1) and new.pad == (12, 0)


def test_valid_convolution_and_existing_dilation():
    # a 7x7 valid fc6 over an x4 blob: dilation 4, pad stays 0
    new, _ = dilate_conv(Window((7, 7)), (4, 4), (1, 1), EXACT)
    assert new.dilation == (4, 4) and new.pad == (0, 0)
    # an already-dilated 3x3 (d2 p2) over an x2 blob: d4 p4
    new, _ = dilate_conv(Window((3, 3), pad=(2, 2), dilation=(2, 2)), (2, 2), (1, 1), EXACT)
    assert new.dilation == (4, 4) and new.pad == (4, 4)


def test_one_by_one_is_unaffected_by_dilation():
    new, _ = dilate_conv(Window((1, 1), (2, 2)), (2, 2), (2, 2), SEED)
    assert new == Window((1, 1))


def test_even_kernel_falls_back_to_the_exact_rule_with_a_note():
    # 2x2 stride 2: the seed dilation 2 would need pad 0.5
    new, notes = dilate_conv(Window((2, 2), (2, 2)), (1, 1), (2, 2), SEED)
    assert new == Window((2, 2)) and len(notes) == 2


def test_pooling_without_stride():
    assert unstride_pool(Window((2, 2), (2, 2)), (2, 2), SEED) == Window((3, 3), (1, 1), (1, 1))
    assert unstride_pool(Window((2, 2), (2, 2)), (2, 2), EXACT) == Window((2, 2))
    assert unstride_pool(Window((3, 3), (2, 2), (1, 1)), (2, 2), SEED) == Window((3, 3), pad=(1, 1))
