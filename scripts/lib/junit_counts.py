"""Print "passed failed skipped" from a pytest JUnit XML report (scripts/test's summary)."""

import sys
from xml.etree import ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()  # noqa: S314 - our own pytest's report
except OSError, ET.ParseError:
    print("0 0 0")
    sys.exit(0)
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
tests = failed = skipped = 0
for suite in suites:
    tests += int(suite.get("tests", 0))
    failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped += int(suite.get("skipped", 0))
print(tests - failed - skipped, failed, skipped)
