"""results.py JUNIT.XML [OTHER.XML]: one "OUTCOME test-id" line per test of a kazoo run
(passed, failed, error, skipped; a test failed in call and errored in teardown counts
as failed). With two files: the tests whose outcome differs, side by side."""
import sys
import xml.etree.ElementTree as ET


def outcomes(path):
    res = {}
    for tc in ET.parse(path).iter("testcase"):
        if tc.get("classname") is None:  # an interrupted session's own entry
            continue
        tid = "%s::%s" % (tc.get("classname"), tc.get("name"))
        kinds = [c.tag for c in tc if c.tag in ("failure", "error", "skipped")]
        o = "failed" if "failure" in kinds else "error" if "error" in kinds else \
            "skipped" if "skipped" in kinds else "passed"
        if res.get(tid) != "failed":
            res[tid] = o
    return res


a = outcomes(sys.argv[1])
if len(sys.argv) == 2:
    for tid in sorted(a):
        print(a[tid], tid)
    counts = {}
    for o in a.values():
        counts[o] = counts.get(o, 0) + 1
    print("# " + ", ".join("%d %s" % (n, o) for o, n in sorted(counts.items())))
else:
    b = outcomes(sys.argv[2])
    for tid in sorted(set(a) | set(b)):
        if a.get(tid) != b.get(tid):
            print("%-8s %-8s %s" % (a.get(tid, "-"), b.get(tid, "-"), tid))
