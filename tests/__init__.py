"""MaskWatch tests (a package, so that tests.support imports without a sys.path hack)."""
