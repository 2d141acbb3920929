"""Remote engines' logic: the connection listing, the host probe, how an architecture runs there,
the argvs, spreading a matrix; tests/e2e/test_remote_root.py runs them against a second
account's podman over a real ssh connection."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import pytest

from podrepro import config
from podrepro.arches import lookup
from podrepro.errors import ConfigError, PodreproError, UsageError
from podrepro.remote import connection, doctor, session

LISTING = json.dumps([
    {"Name": "peer", "URI": "ssh://dev@127.0.0.1:2222/run/user/1005/podman/podman.sock",
     "Identity": "/home/me/.ssh/k", "Default": True},
    {"Name": "board", "URI": "ssh://pi@rpi.lan/run/user/1000/podman/podman.sock", "Identity": ""},
    {"Name": "sock", "URI": "unix:///run/podman/podman.sock"},
    "junk",
])


def test_a_listing_gives_each_connections_ssh_account() -> None:
    known = connection.parse_listing(LISTING)
    assert set(known) == {"peer", "board", "sock"}
    peer = connection.parse("peer", *known["peer"])
    assert (peer.user, peer.host, peer.port, peer.socket, peer.identity) == (
        "dev", "127.0.0.1", 2222, "/run/user/1005/podman/podman.sock", "/home/me/.ssh/k")
    assert peer.ssh_argv("true")[-2:] == ["dev@127.0.0.1", "true"]
    assert "BatchMode=yes" in peer.ssh_argv("true") and peer.ssh_argv("x")[5:7] == ["-p", "2222"]
    assert peer.rsync_shell() == "ssh -o BatchMode=yes -o ConnectTimeout=15 -p 2222 -i /home/me/.ssh/k"
    board = connection.parse("board", *known["board"])
    assert (board.port, board.identity, board.where()) == (22, None, "pi@rpi.lan")
    with pytest.raises(UsageError, match="not ssh://"):
        connection.parse("sock", *known["sock"])
    assert connection.parse_listing("null") == {}


def test_names_and_spreading_over_engines() -> None:
    for bad in ("-oProxyCommand=x", "a b", "", "x;y"):
        with pytest.raises(UsageError):
            connection.check_name(bad)
    assert connection.spread("local,peer", 3) == [None, "peer", None]
    assert connection.spread("peer", 2) == ["peer", "peer"]
    with pytest.raises(UsageError):
        connection.spread(",", 2)


PROBE = """home=/home/dev
machine=x86_64
kernel=6.1.0
rsync=yes
podman=yes
binfmt=enabled
== qemu-arm
enabled
interpreter /usr/libexec/qemu-binfmt/arm-binfmt-P
flags: PF
offset 0
magic 7f454c4601010100000000000000000002002800
mask ffffffffffffff00fffffffffffffffffeffffff
== qemu-mipsel
disabled
interpreter /usr/libexec/qemu-binfmt/mipsel-binfmt-P
flags: PF
offset 0
magic 7f454c4601010100000000000000000002000800
mask ffffffffffffff00fffffffffffffffffeffffff
== qemu-s390x
enabled
interpreter /usr/bin/qemu-s390x
flags: P
offset 0
magic 7f454c4602020100000000000000000000020016
mask ffffffffffffff00fffffffffffffffffffeffff
"""


def _remote(text: str = PROBE) -> session.Remote:
    conn = connection.parse("peer", "ssh://dev@127.0.0.1:2222/run/user/1005/podman/podman.sock", None)
    return session.Remote(conn, session.parse_probe(text))


def test_how_each_architecture_runs_there() -> None:
    rem = _remote()
    assert (rem.host.home, rem.host.machine, rem.host.rsync, rem.host.selinux) == ("/home/dev", "x86_64", True, False)
    assert [e.name for e in rem.host.entries] == ["qemu-arm", "qemu-mipsel", "qemu-s390x"]
    assert "runs natively on peer (x86_64)" in rem.check_arch(lookup("amd64"))
    assert "runs natively" in rem.check_arch(lookup("i386"))
    assert "emulated on peer (x86_64; handler qemu-arm, flags PF)" in rem.check_arch(lookup("arm"))
    with pytest.raises(PodreproError, match="cannot run mips binaries") as e:
        rem.check_arch(lookup("mips"))  # its entry is disabled
    assert e.value.hint == "on that host: podrepro binfmt register mips"
    with pytest.raises(PodreproError, match="cannot run s390x"):
        rem.check_arch(lookup("s390x"))  # no F flag: not usable from a container
    board = _remote("home=/home/pi\nmachine=aarch64\n")
    assert "runs natively on peer (aarch64)" in board.check_arch(lookup("arm64"))
    with pytest.raises(PodreproError, match="cannot run arm binaries"):
        board.check_arch(lookup("arm"))
    with pytest.raises(PodreproError, match="printed nothing useful"):
        session.parse_probe("Welcome to the host\n")


def test_argvs_point_at_the_connection_and_the_tree_is_per_project() -> None:
    rem = _remote()
    assert rem.wrap(["podman", "run", "--rm", "img"]) == ["podman", "--connection", "peer", "run", "--rm", "img"]
    a, b = rem.tree(Path("/src/my proj;x")), rem.tree(Path("/other/my proj;x"))
    assert a.parent == PurePosixPath("/home/dev/.local/share/podrepro/trees") and a != b
    assert a.name.startswith("my_proj_x-")


def test_a_project_file_may_not_choose_the_engine(tmp_path: Path) -> None:
    (tmp_path / "podrepro.toml").write_text('connection = "attacker"\n')
    with pytest.raises(ConfigError, match="'connection' is not allowed in a project file"):
        config.resolve({}, cwd=tmp_path, environ={}, user_file=tmp_path / "none.toml")
    user = tmp_path / "user.toml"
    user.write_text('connection = "peer"\n')
    (tmp_path / "podrepro.toml").write_text("")
    assert config.resolve({}, cwd=tmp_path, environ={}, user_file=user)["connection"] == "peer"


def test_remote_runs_refuse_what_needs_this_hosts_files(monkeypatch: pytest.MonkeyPatch) -> None:
    from podrepro.remote import run

    monkeypatch.setattr(session, "open_remote", lambda name: pytest.fail("opened before refusing"))
    with pytest.raises(UsageError, match="--core with --connection: not supported"):
        run.start("peer", lookup("arm"), {"--image": False, "--core": True}, lambda line: None)


def test_the_doctor_reads_the_service() -> None:
    ok = doctor._service(json.dumps({"host": {"arch": "arm64", "cgroupVersion": "v2", "security": {"rootless": True}},
                                     "version": {"Version": "5.4.2"}}).encode())
    assert (ok.status, ok.detail) == ("ok", "podman 5.4.2, rootless, cgroups v2, arm64")
    root = doctor._service(json.dumps({"host": {"security": {"rootless": False}}, "version": {}}).encode())
    assert root.status == "fail" and "rootless" in root.fix
    assert doctor._service(b"nope").status == "fail"
    assert not doctor.ok([ok, root]) and doctor.ok([ok])


def test_only_podrepros_images_are_removed_there() -> None:
    with pytest.raises(PodreproError, match="not a podrepro image"):
        session.remove_remote_image("peer", "docker.io/library/debian:bookworm")
