"""The demo's steps replayed in-process (fast: cheap key derivation), look-ups included.

`tracekit demo` runs the same steps as child processes; this keeps them working without
paying for the real Argon2 parameters at every step.
"""

from __future__ import annotations

import json

from tracekit.cli.demo import (
    DEMO_LOOKUPS,
    DEMO_STEPS,
    lookup_command,
    lookup_from,
    prepare_workdir,
    step_command,
    step_lookups,
)


def test_demo_steps_replay(cli, tmp_path):
    prepared = prepare_workdir(tmp_path)
    for number, step in enumerate(DEMO_STEPS, 1):
        values = dict(prepared)
        for name in step_lookups(step):
            lookup = DEMO_LOOKUPS[name]
            found = cli(*lookup_command(lookup, tmp_path))
            assert found.exit_code == 0, found.stderr
            values[name] = lookup_from(json.loads(found.stdout), lookup)
        args = step_command(step, tmp_path, values)
        assert not any("{" in arg for arg in args), args
        result = cli(*args, env={"TRACEKIT_PASSPHRASE": step.passphrase} if step.passphrase else None)
        assert result.exit_code == step.expect_exit, f"step {number} {step.title}: {result.stderr}"


def test_demo_covers_the_tracers_day():
    commands = {" ".join(step.args[:2]) for step in DEMO_STEPS}
    for expected in ("case add", "contact add", "case tree", "person search", "contact promote"):
        assert expected in commands
    assert any(step.args[0] == "today" for step in DEMO_STEPS)


def test_demo_ends_with_the_vetted_team_working_the_referred_case():
    vetted = [step for step in DEMO_STEPS if step.args[:2] == ("--store", "{workdir}/vetted.store")]
    assert DEMO_STEPS[-len(vetted) :] == vetted, "the vetted team's steps come last"
    commands = [" ".join(step.args[2:4]) for step in vetted]
    for expected in ("referrals receive", "today --date", "case show", "contact call"):
        assert expected in commands
    refer = next(n for n, step in enumerate(DEMO_STEPS) if step.args[0] == "refer")
    receive = next(n for n, step in enumerate(DEMO_STEPS) if step.args[2:4] == ("referrals", "receive"))
    assert refer < receive
