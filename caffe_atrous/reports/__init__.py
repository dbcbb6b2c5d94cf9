"""The reports of a conversion: --report and --report-json (text.py), --report-html (html/)."""
