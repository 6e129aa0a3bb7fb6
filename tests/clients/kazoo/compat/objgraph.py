"""Stand-in for objgraph (Debian python3-objgraph): kazoo's test_cache uses only
count(typename), the number of live objects gc tracks of that type name. run.sh puts
compat/ on the path only when `import objgraph` fails."""
import gc


def count(typename, objects=None):
    objs = gc.get_objects() if objects is None else objects
    return sum(1 for o in objs if type(o).__name__ == typename)
