"""Tests of tracekit.crypto.passphrase: sources, their order, and the rules on each."""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tracekit.crypto import passphrase as pp
from tracekit.crypto.passphrase import (
    ENVIRONMENT_VARIABLE,
    MAX_PASSPHRASE_BYTES,
    MIN_NEW_PASSPHRASE_LENGTH,
    PassphraseSource,
    check_new_passphrase,
    describe_source,
    read_passphrase,
    wipe,
)
from tracekit.errors import ExitCode, PassphraseError

SECRET = "correct horse battery staple"
NO_SOURCE = PassphraseSource()


def no_tty() -> bool:
    return False


def tty() -> bool:
    return True


class FakeGetpass:
    """Answers prompts from a list and records the prompts shown."""

    def __init__(self, *answers: str | type[BaseException]) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        answer = self.answers.pop(0)
        if isinstance(answer, type):
            raise answer()
        return answer


def never_prompt(prompt: str) -> str:
    raise AssertionError(f"getpass must not be called (prompt {prompt!r})")


def read(source: PassphraseSource = NO_SOURCE, **kw: object) -> bytearray:
    """read_passphrase with an empty environment, no terminal and no prompt by default."""
    kw.setdefault("environ", {})
    kw.setdefault("isatty", no_tty)
    kw.setdefault("getpass_fn", never_prompt)
    return read_passphrase(source, **kw)  # type: ignore[arg-type]


def refused(call: Callable[[], object], *, secret: str = SECRET) -> PassphraseError:
    """The PassphraseError raised by ``call``, checked not to reveal ``secret``."""
    with pytest.raises(PassphraseError) as caught:
        call()
    error = caught.value
    assert error.exit_code == ExitCode.PASSPHRASE
    for text in (str(error), error.hint or ""):
        assert secret not in text
    return error


@pytest.fixture
def private_file(tmp_path: Path) -> Callable[[bytes], Path]:
    def make(content: bytes, mode: int = 0o600) -> Path:
        path = tmp_path / "passphrase"
        path.write_bytes(content)
        path.chmod(mode)
        return path

    return make


@pytest.fixture
def pipe_with() -> Iterator[Callable[[bytes], int]]:
    """A pipe whose write end has delivered ``content`` and is closed; yields the read end."""
    read_ends: list[int] = []

    def make(content: bytes) -> int:
        read_end, write_end = os.pipe()
        os.write(write_end, content)
        os.close(write_end)
        read_ends.append(read_end)
        return read_end

    yield make
    for fd in read_ends:
        os.close(fd)


# -- precedence ------------------------------------------------------------------------


def test_file_comes_first(private_file: Callable[[bytes], Path], pipe_with: Callable[[bytes], int]) -> None:
    source = PassphraseSource(file=private_file(b"from file\n"), fd=pipe_with(b"from fd"))
    environ = {ENVIRONMENT_VARIABLE: "from environment"}
    assert read(source, environ=environ, isatty=tty) == b"from file"
    assert describe_source(source, environ=environ, isatty=tty) == f"passphrase file {source.file}"


def test_descriptor_comes_before_environment_and_prompt(pipe_with: Callable[[bytes], int]) -> None:
    source = PassphraseSource(fd=pipe_with(b"from fd\n"))
    environ = {ENVIRONMENT_VARIABLE: "from environment"}
    assert read(source, environ=environ, isatty=tty) == b"from fd"
    assert describe_source(source, environ=environ, isatty=tty) == f"file descriptor {source.fd}"


def test_environment_comes_before_prompt() -> None:
    environ = {ENVIRONMENT_VARIABLE: "from environment"}
    assert read(environ=environ, isatty=tty) == b"from environment"
    assert describe_source(NO_SOURCE, environ=environ, isatty=tty) == "environment variable TRACEKIT_PASSPHRASE"


def test_prompt_comes_last() -> None:
    assert read(isatty=tty, getpass_fn=FakeGetpass("typed")) == b"typed"
    assert describe_source(NO_SOURCE, environ={}, isatty=tty) == "terminal prompt"


def test_result_is_a_bytearray_that_can_be_wiped() -> None:
    result = read(environ={ENVIRONMENT_VARIABLE: SECRET})
    assert isinstance(result, bytearray)
    wipe(result)
    assert result == bytes(len(SECRET))


# -- no source -------------------------------------------------------------------------


def test_no_source_and_no_terminal_fails_at_once_listing_the_sources() -> None:
    started = time.monotonic()
    error = refused(lambda: read())
    assert time.monotonic() - started < 1
    for source in ("--passphrase-file", "--passphrase-fd", ENVIRONMENT_VARIABLE, "terminal"):
        assert source in str(error)
    assert describe_source(NO_SOURCE, environ={}, isatty=no_tty) == "no passphrase source"


def test_by_default_a_non_terminal_stdin_means_no_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(SECRET + "\n"))
    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(pp.getpass, "getpass", never_prompt)
    refused(lambda: read_passphrase(NO_SOURCE))


def test_a_closed_stdin_means_no_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stdin", closed)
    refused(lambda: read(isatty=None))


def test_by_default_the_environment_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, SECRET)
    assert read_passphrase(NO_SOURCE, isatty=no_tty) == SECRET.encode()


# -- passphrase file -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"secret", b"secret"),
        (b"secret\n", b"secret"),
        (b"secret\r\n", b"secret"),
        (b"secret\n\n", b"secret\n"),
        (b"secret\r\n\r\n", b"secret\r\n"),
        (b"secret\r", b"secret\r"),
        (b"sec\nret\n", b"sec\nret"),
        (b"  secret  \n", b"  secret  "),
    ],
)
def test_file_loses_exactly_one_trailing_newline(
    private_file: Callable[[bytes], Path], content: bytes, expected: bytes
) -> None:
    assert read(PassphraseSource(file=private_file(content))) == expected


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_private_file_is_accepted(private_file: Callable[..., Path], mode: int) -> None:
    assert read(PassphraseSource(file=private_file(SECRET.encode(), mode))) == SECRET.encode()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o620, 0o602, 0o644, 0o610, 0o666])
def test_file_open_to_other_users_is_refused(private_file: Callable[..., Path], mode: int) -> None:
    path = private_file(SECRET.encode(), mode)
    error = refused(lambda: read(PassphraseSource(file=path)))
    assert str(path) in str(error)
    assert f"{mode:04o}" in str(error)
    assert f"chmod 600 {path}" in str(error)


def test_chmod_fix_quotes_the_path(tmp_path: Path) -> None:
    path = tmp_path / "my passphrase"
    path.write_text(SECRET)
    path.chmod(0o644)
    error = refused(lambda: read(PassphraseSource(file=path)))
    assert f"chmod 600 '{path}'" in str(error)


def test_symlink_to_a_private_file_is_judged_by_the_file(private_file: Callable[..., Path], tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(private_file(SECRET.encode()))
    assert read(PassphraseSource(file=link)) == SECRET.encode()
    private_file(SECRET.encode(), 0o644)
    refused(lambda: read(PassphraseSource(file=link)))


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    error = refused(lambda: read(PassphraseSource(file=path)))
    assert str(error) == f"passphrase file {path} does not exist"


def test_directory_is_refused(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    error = refused(lambda: read(PassphraseSource(file=tmp_path)))
    assert str(error) == f"passphrase file {tmp_path} is a directory, not a regular file"


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            read(PassphraseSource(file=fifo))
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "reading a FIFO passphrase file blocked"
    assert isinstance(outcome[0], PassphraseError)
    assert "not a regular file" in str(outcome[0])


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n"])
def test_empty_file_is_refused(private_file: Callable[[bytes], Path], content: bytes) -> None:
    path = private_file(content)
    error = refused(lambda: read(PassphraseSource(file=path)))
    assert str(error) == f"the passphrase from the passphrase file {path} is empty"


def test_file_up_to_the_size_limit_is_read_whole(private_file: Callable[[bytes], Path]) -> None:
    content = b"p" * MAX_PASSPHRASE_BYTES
    assert read(PassphraseSource(file=private_file(content))) == content


def test_file_over_the_size_limit_is_refused(private_file: Callable[[bytes], Path]) -> None:
    path = private_file(b"p" * (MAX_PASSPHRASE_BYTES + 1))
    error = refused(lambda: read(PassphraseSource(file=path)))
    assert f"more than {MAX_PASSPHRASE_BYTES} bytes" in str(error)


def test_file_that_is_not_utf8_is_refused_without_echoing_it(
    private_file: Callable[[bytes], Path],
) -> None:
    path = private_file(SECRET.encode() + b"\xff")
    error = refused(lambda: read(PassphraseSource(file=path)))
    assert str(error) == f"the passphrase from the passphrase file {path} is not valid UTF-8"
    assert error.__context__ is None and error.__cause__ is None


# -- file descriptor -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"from fd", b"from fd"), (b"from fd\n", b"from fd"), (b"from fd\r\n", b"from fd")],
)
def test_descriptor_is_read_and_loses_one_newline(
    pipe_with: Callable[[bytes], int], content: bytes, expected: bytes
) -> None:
    fd = pipe_with(content)
    assert read(PassphraseSource(fd=fd)) == expected
    os.fstat(fd)  # still open: the caller owns it


def test_descriptor_is_read_until_end_of_file() -> None:
    read_end, write_end = os.pipe()

    def write_slowly() -> None:
        for part in (b"first ", b"second ", b"third\n"):
            os.write(write_end, part)
            time.sleep(0.05)
        os.close(write_end)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        assert read(PassphraseSource(fd=read_end)) == b"first second third"
    finally:
        writer.join()
        os.close(read_end)


def test_closed_descriptor_is_refused() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    error = refused(lambda: read(PassphraseSource(fd=read_end)))
    assert str(error) == f"--passphrase-fd {read_end}: descriptor {read_end} is not open"


def test_negative_descriptor_is_refused() -> None:
    error = refused(lambda: read(PassphraseSource(fd=-1)))
    assert "--passphrase-fd -1" in str(error)


def test_unreadable_descriptor_is_refused() -> None:
    read_end, write_end = os.pipe()
    try:
        error = refused(lambda: read(PassphraseSource(fd=write_end)))
        assert str(error).startswith(f"cannot read the passphrase from the file descriptor {write_end}: ")
    finally:
        os.close(read_end)
        os.close(write_end)


def test_empty_descriptor_is_refused(pipe_with: Callable[[bytes], int]) -> None:
    fd = pipe_with(b"\n")
    error = refused(lambda: read(PassphraseSource(fd=fd)))
    assert str(error) == f"the passphrase from the file descriptor {fd} is empty"


# -- environment -----------------------------------------------------------------------


def test_environment_value_is_used_exactly() -> None:
    assert read(environ={ENVIRONMENT_VARIABLE: " spaced \n"}) == b" spaced \n"


def test_empty_environment_variable_is_refused_not_skipped() -> None:
    error = refused(lambda: read(environ={ENVIRONMENT_VARIABLE: ""}, isatty=tty, getpass_fn=never_prompt))
    assert str(error) == ("the passphrase from the environment variable TRACEKIT_PASSPHRASE is empty")


def test_environment_value_with_undecodable_bytes_is_refused() -> None:
    # os.environ turns bytes that are not UTF-8 into lone surrogates.
    error = refused(lambda: read(environ={ENVIRONMENT_VARIABLE: SECRET + "\udcff"}))
    assert "not valid UTF-8" in str(error)
    assert error.__context__ is None and error.__cause__ is None


# -- prompt ----------------------------------------------------------------------------


def test_prompt_without_confirmation_asks_once() -> None:
    getpass = FakeGetpass(SECRET)
    assert read(isatty=tty, getpass_fn=getpass) == SECRET.encode()
    assert getpass.prompts == ["Passphrase: "]


def test_prompt_with_confirmation_asks_twice() -> None:
    getpass = FakeGetpass(SECRET, SECRET)
    result = read(isatty=tty, getpass_fn=getpass, prompt="New passphrase", confirm=True)
    assert result == SECRET.encode()
    assert getpass.prompts == ["New passphrase: ", "New passphrase (again): "]


def test_confirmation_mismatch_asks_again(capsys) -> None:
    """Issue 14 item 8: one typo in the confirmation ended 'tracekit init'."""
    other = "correct horse battery stapler"
    getpass = FakeGetpass(SECRET, other, SECRET, SECRET)
    assert read(isatty=tty, getpass_fn=getpass, confirm=True) == SECRET.encode()
    assert len(getpass.prompts) == 4
    warning = capsys.readouterr().err
    assert "do not match; type it again (2 more tries)" in warning
    assert SECRET not in warning and other not in warning


def test_confirmation_mismatch_three_times_is_refused() -> None:
    other = "correct horse battery stapler"
    getpass = FakeGetpass(SECRET, other, SECRET, other, SECRET, other)
    error = refused(lambda: read(isatty=tty, getpass_fn=getpass, confirm=True))
    assert str(error) == "the two passphrases entered did not match (3 tries); nothing was created or changed"
    assert other not in str(error)
    assert getpass.answers == []


def test_empty_prompt_answer_is_refused_without_confirmation() -> None:
    getpass = FakeGetpass("")
    error = refused(lambda: read(isatty=tty, getpass_fn=getpass, confirm=True))
    assert str(error) == "the passphrase from the terminal prompt is empty"
    assert len(getpass.prompts) == 1


def test_end_of_input_at_the_prompt_is_refused() -> None:
    error = refused(lambda: read(isatty=tty, getpass_fn=FakeGetpass(EOFError)))
    assert "no passphrase was entered" in str(error)


def test_interrupt_at_the_prompt_propagates() -> None:
    with pytest.raises(KeyboardInterrupt):
        read(isatty=tty, getpass_fn=FakeGetpass(KeyboardInterrupt))


# -- NFC normalisation -----------------------------------------------------------------

DECOMPOSED = "cafe\u0301 cre\u0300me"  # e + combining accents
COMPOSED = "caf\u00e9 cr\u00e8me"


def test_prompt_answer_is_normalised_to_nfc() -> None:
    assert read(isatty=tty, getpass_fn=FakeGetpass(DECOMPOSED)) == COMPOSED.encode()


def test_confirmation_compares_normalised_forms() -> None:
    getpass = FakeGetpass(DECOMPOSED, COMPOSED)
    assert read(isatty=tty, getpass_fn=getpass, confirm=True) == COMPOSED.encode()


def test_environment_value_is_normalised_to_nfc() -> None:
    assert read(environ={ENVIRONMENT_VARIABLE: DECOMPOSED}) == COMPOSED.encode()


def test_file_is_normalised_to_nfc(private_file: Callable[[bytes], Path]) -> None:
    path = private_file(DECOMPOSED.encode() + b"\n")
    assert read(PassphraseSource(file=path)) == COMPOSED.encode()


def test_descriptor_is_normalised_to_nfc(pipe_with: Callable[[bytes], int]) -> None:
    assert read(PassphraseSource(fd=pipe_with(DECOMPOSED.encode()))) == COMPOSED.encode()


# -- new passphrases -------------------------------------------------------------------


def test_minimum_length_is_twelve() -> None:
    assert MIN_NEW_PASSPHRASE_LENGTH == 12


def test_new_passphrase_of_twelve_characters_is_accepted() -> None:
    check_new_passphrase(bytearray(b"a" * 12))


def test_new_passphrase_of_eleven_characters_is_refused() -> None:
    error = refused(lambda: check_new_passphrase(bytearray(b"a" * 11)), secret="a" * 11)
    assert str(error) == "a new passphrase must be at least 12 characters long"


@pytest.mark.parametrize("character", ["\u00e9", "\u20ac", "\U0001f511"])  # 2, 3, 4 bytes
def test_new_passphrase_length_counts_characters_not_bytes(character: str) -> None:
    check_new_passphrase(bytearray(character * 12, "utf-8"))
    with pytest.raises(PassphraseError):
        check_new_passphrase(bytearray(character * 11, "utf-8"))
