"""A PostgreSQL server for the tests: the one TETHER_TEST_DATABASE_URL names (a role that may
create databases), else a throwaway cluster started here: initdb into a temporary folder,
listening on a Unix socket in that folder only (no TCP port), stopped and removed at the end
of the session. Each test gets fresh databases, made from a template and dropped after.

PostgreSQL refuses to run as root: as root, the cluster runs as the ``postgres`` user that
Debian's package creates. Debian keeps the binaries in /usr/lib/postgresql/<version>/bin.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENV_URL = "TETHER_TEST_DATABASE_URL"


def on_ci() -> bool:
    """CI says so (CI=true): there no test may be skipped for want of a server."""
    return os.environ.get("CI", "").lower() in ("true", "1")


def bin_dir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: beside pg_ctl on PATH, else Debian's
    newest /usr/lib/postgresql/<version>/bin; None if there is none."""
    candidates = []
    if found := shutil.which("pg_ctl"):
        candidates.append(Path(found).resolve().parent)

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", path.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def unavailable() -> str | None:
    """Why no PostgreSQL can be had here, or None when one can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install '.[postgres]'"
    if os.environ.get(ENV_URL):
        return None
    if bin_dir() is None:
        return (f"no PostgreSQL: set {ENV_URL} to a server's URL, or install the server "
                "(apt-get install postgresql) for a throwaway cluster")
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres user to run the cluster as"
    return None


class Cluster:
    """A throwaway cluster in a temporary folder, on a Unix socket only."""

    def __init__(self, binaries: Path) -> None:
        self.bin = binaries
        # Not under pytest's tmp folders: those are private to this user, and the socket's
        # path must stay under ~100 characters.
        self.root = Path(tempfile.mkdtemp(prefix="tether-pg-"))
        self.data = self.root / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.as_user, *args], cwd=self.root, capture_output=True,
                              text=True, timeout=120, check=False)
        if done.returncode:
            log = self.root / "server.log"
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): "
                               f"{done.stderr or done.stdout}"
                               f"{log.read_text() if log.exists() else ''}")

    def start(self) -> str:
        """Initialise and start the cluster; returns its admin URL."""
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "tether", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        # Durability is worth nothing in a cluster thrown away after the session.
        options = (f"-c listen_addresses='' -c unix_socket_directories='{self.root}' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        return f"postgresql+psycopg://tether@/postgres?host={self.root}"

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class Server:
    """Databases on one PostgreSQL server, made for the tests and dropped after them."""

    def __init__(self, admin_url: str) -> None:
        import sqlalchemy as sa

        self.admin_url = sa.make_url(admin_url)
        if self.admin_url.drivername == "postgresql":
            self.admin_url = self.admin_url.set(drivername="postgresql+psycopg")
        self.engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT",
                                       poolclass=sa.pool.NullPool)
        # The template of this session's databases; named apart, as several sessions (xdist
        # workers, two checkouts) may share one TETHER_TEST_DATABASE_URL server.
        self.template = f"t_template_{uuid.uuid4().hex[:12]}"
        # Most servers sort by a language's rules (here ICU's en-US, where "a" < "B"), not
        # byte by byte: the store must not lean on the database's collation.
        try:
            self._sql(f'CREATE DATABASE "{self.template}" TEMPLATE template0 ENCODING UTF8 '
                      "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
        except Exception:  # a server built without ICU
            self._sql(f'CREATE DATABASE "{self.template}" TEMPLATE template0 ENCODING UTF8')

    def _sql(self, statement: str) -> None:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            conn.execute(sa.text(statement))

    def url(self, database: str, password: str | None = None) -> str:
        url = self.admin_url.set(database=database)
        if password is not None:
            url = url.set(password=password)
        return url.render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> str:
        """A new empty database, or a copy of ``template`` (nobody may be connected to it)."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self._sql(f'CREATE DATABASE "{name}" TEMPLATE "{template or self.template}"')
        return name

    def drop(self, name: str) -> None:
        self._sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.drop(self.template)
        self.engine.dispose()


class Databases:
    """One test's databases: each made fresh, all dropped when the test ends."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.made: list[str] = []

    def new(self, template: str | None = None) -> str:
        """The name of a new empty database (or of a copy of ``template``)."""
        self.made.append(self.server.create(template))
        return self.made[-1]

    def new_url(self) -> str:
        return self.server.url(self.new())

    def drop_all(self) -> None:
        for name in reversed(self.made):
            self.server.drop(name)


class Router:
    """Sends every SQLite file store a test opens (a workspace's default
    ``.tether/state.db`` among them) to a PostgreSQL database of its own instead.

    The SQLite file becomes a marker naming that database. Copying a folder copies the
    SQLite stores in it as they are then: so a folder copied with shutil.copytree gets a
    copy of each database, made at once (a marker copied otherwise, on first use).
    """

    def __init__(self, databases: Databases) -> None:
        self.databases = databases
        self.homes: dict[Path, str] = {}  # marker path -> its database

    def url_for(self, url: str) -> str:
        prefix = "sqlite:///"
        if not url.startswith(prefix) or url[len(prefix):] in ("", ":memory:") or "?" in url:
            return url
        path = Path(url[len(prefix):]).resolve()
        marker: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        if marker.get("home") != str(path):
            self._mark(path, self.databases.new(marker.get("postgresql")))
        return self.databases.server.url(self.homes[path])

    def _mark(self, path: Path, database: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"postgresql": database, "home": str(path)}))
        self.homes[path] = database

    def copied(self, src: Path, dst: Path) -> None:
        """``src`` was copied to ``dst``: give each store copied along a database of its own."""
        src, dst = src.resolve(), dst.resolve()
        for path, database in list(self.homes.items()):
            if path.is_relative_to(src) and (copy := dst / path.relative_to(src)).is_file():
                self._mark(copy, self.databases.new(database))

    def install(self, monkeypatch: Any) -> None:
        """Route every Store opened, and follow every folder copied, until the test ends."""
        from tether.store.db import Store

        opened: Callable[..., None] = Store.__init__
        copytree = shutil.copytree

        def routed(store: Store, url: str) -> None:
            opened(store, self.url_for(url))

        def copy_with_stores(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            done = copytree(src, dst, *args, **kwargs)
            self.copied(Path(src), Path(dst))
            return done

        monkeypatch.setattr(Store, "__init__", routed)
        monkeypatch.setattr(shutil, "copytree", copy_with_stores)
