"""kazoo: digest authentication and ACL enforcement.

Pins:
- add_auth("digest", "user:password") grants access to a node whose ACL is
  digest:user:<base64(sha1("user:password"))> (make_digest_acl); another session without
  the credentials gets NoAuthError on get/set/create-child/get_children, exists() works;
- the "auth" ACL pseudo-scheme (CREATOR_ALL) expands to the caller's digest id, visible in
  get_acls; without credentials it is InvalidACLError;
- set_acls bumps aversion only; a bad digest password in add_auth leaves the session usable
  (ZooKeeper's digest provider accepts any credentials, they just match nothing).

Verified against Apache ZooKeeper 3.8.0 (Debian package).
"""
import pytest
from kazoo.exceptions import InvalidACLError, NoAuthError
from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, make_digest_acl, make_digest_acl_credential

CREATOR_ALL = [ACL(31, Id("auth", ""))]


def test_digest_acl(kazoo_factory, root):
    owner = kazoo_factory()
    owner.add_auth("digest", "user:password")
    stranger = kazoo_factory()
    owner.create(root)
    acl = make_digest_acl("user", "password", all=True)
    assert acl.id.id == "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY="
    owner.create(root + "/sec", b"secret", acl=[acl])
    assert owner.get(root + "/sec")[0] == b"secret"
    with pytest.raises(NoAuthError):
        stranger.get(root + "/sec")
    with pytest.raises(NoAuthError):
        stranger.set(root + "/sec", b"x")
    with pytest.raises(NoAuthError):
        stranger.create(root + "/sec/child")
    with pytest.raises(NoAuthError):
        stranger.get_children(root + "/sec")
    assert stranger.exists(root + "/sec") is not None
    stranger.add_auth("digest", "user:wrong")
    with pytest.raises(NoAuthError):
        stranger.get(root + "/sec")
    stranger.add_auth("digest", "user:password")
    assert stranger.get(root + "/sec")[0] == b"secret"


def test_auth_scheme_acl(kazoo_factory, root):
    owner = kazoo_factory()
    plain = kazoo_factory()
    plain.create(root)
    with pytest.raises(InvalidACLError):
        plain.create(root + "/c", acl=CREATOR_ALL)
    owner.add_auth("digest", "alice:secret")
    owner.create(root + "/c", b"v", acl=CREATOR_ALL)
    acls, st = owner.get_acls(root + "/c")
    assert acls == [ACL(31, Id("digest", make_digest_acl_credential("alice", "secret")))]
    assert st.aversion == 0
    with pytest.raises(NoAuthError):
        plain.get(root + "/c")
    st2 = owner.set_acls(root + "/c", OPEN_ACL_UNSAFE)
    assert st2.aversion == 1 and st2.version == 0 and st2.mzxid == st.mzxid
    assert plain.get(root + "/c")[0] == b"v"
