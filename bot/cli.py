"""The ``ban-bot`` command: thin wrappers that parse, call the library and print.

Usage::

    ban-bot index build            # validate knowledge/, embed what changed, swap atomically
    ban-bot ask "when do updates stop?"
    echo "when do updates stop?" | ban-bot ask --json -
    ban-bot deadlines [WORD] [--json]
    ban-bot chat | serve [--http --port N] | run | eval [--cases FILE]
    ban-bot report [--since DAYS] [--json] [--drafts DIR] [--threshold 0.75]
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bot.config import ConfigError, Settings

F = TypeVar("F", bound=Callable[..., Any])
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _user_errors(fn: F) -> F:
    """Turn the errors a user can cause into one clear line and exit 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from bot.embedding import EmbeddingError
        from bot.index import IndexLoadError
        from bot.knowledge import KnowledgeError

        try:
            return fn(*args, **kwargs)
        except (KnowledgeError, IndexLoadError, EmbeddingError, ConfigError) as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    base: Settings = ctx.obj
    return base.with_overrides(**overrides)


knowledge_option = click.option(
    "--knowledge",
    "knowledge_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Knowledge folder (default: knowledge/, or BAN_BOT_KNOWLEDGE_DIR).",
)
index_option = click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Index folder (default: index/, or BAN_BOT_INDEX_DIR).",
)
model_option = click.option(
    "--model",
    help="Embedding model: bundled:all-MiniLM-L6-v2 (default), or a sentence-transformers "
    "folder or cached name (BAN_BOT_MODEL).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ban-bot")
@click.pass_context
@_user_errors
def cli(ctx: click.Context) -> None:
    """ban-bot: sourced answers about the 2024 US ban on Kaspersky software."""
    ctx.obj = Settings.from_env()
    from bot.logs import configure_logging

    configure_logging(ctx.obj.log_level, json=ctx.obj.log_format == "json", secrets=ctx.obj.secrets)


@cli.group()
def index() -> None:
    """Build, check or roll back the FAISS index."""


@index.command("build")
@knowledge_option
@index_option
@model_option
@click.option(
    "--force",
    is_flag=True,
    help=(
        "Rebuild even when nothing changed (after retraining a model folder in place: its"
        " new weights are then embedded and exported anew)."
    ),
)
@click.pass_context
@_user_errors
def index_build(
    ctx: click.Context,
    knowledge_dir: Path | None,
    index_dir: Path | None,
    model: str | None,
    force: bool,
) -> None:
    """Validate the knowledge set and (re)build the index; only changed texts are embedded."""
    from bot.index import build_index

    settings = _settings(ctx, knowledge_dir=knowledge_dir, index_dir=index_dir, model=model)
    result = build_index(settings, force=force)
    if not result.changed:
        click.echo(
            f"index up to date: {result.entries} entries, {result.vectors} vectors "
            f"(build {result.build_id}, checked in {result.seconds:.2f} s)"
        )
        return
    click.echo(
        f"index built: {result.entries} entries, {result.vectors} vectors "
        f"({result.embedded} embedded, {result.reused} reused) in {result.seconds:.1f} s "
        f"-> {settings.index_dir} (build {result.build_id})"
    )


@index.command("check")
@knowledge_option
@index_option
@model_option
@click.pass_context
@_user_errors
def index_check(
    ctx: click.Context, knowledge_dir: Path | None, index_dir: Path | None, model: str | None
) -> None:
    """Exit non-zero, saying why, if the index is missing, stale, from another model or corrupt."""
    from bot.index import check_index, load_index

    settings = _settings(ctx, knowledge_dir=knowledge_dir, index_dir=index_dir, model=model)
    problems = check_index(settings)
    if problems:
        raise click.ClickException(
            "index not usable: " + "; ".join(problems) + " (run `ban-bot index build`)."
        )
    m = load_index(settings.index_dir).manifest
    click.echo(
        f"index OK: {m['entries']} entries, {m['vectors']} vectors, model {m['model']['name']}, "
        f"query encoder {m['query_encoder']['kind']}, built {m['built_at']} (build {m['build_id']})"
    )


@index.command("rollback")
@index_option
@click.pass_context
@_user_errors
def index_rollback(ctx: click.Context, index_dir: Path | None) -> None:
    """Make the previous build live again (a running bot picks it up)."""
    from bot.index import rollback

    settings = _settings(ctx, index_dir=index_dir)
    click.echo(f"rolled back to build {rollback(settings.index_dir)}")


@cli.command()
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON output; with '-' one object per line.")
@index_option
@click.pass_context
@_user_errors
def ask(ctx: click.Context, question: str | None, as_json: bool, index_dir: Path | None) -> None:
    """Answer QUESTION, or with '-' each line of standard input (each on its own: no context)."""
    from bot.answer import Engine
    from bot.handlers import question_reply
    from bot.render import CLI_COMMANDS, render_text

    if question is None:
        raise click.UsageError("give a QUESTION, or '-' to read questions from standard input.")
    engine = Engine.load(_settings(ctx, index_dir=index_dir))
    stream = question == "-"
    # One engine (one model load) for the whole stream; each answer is flushed as it comes.
    questions = (line.rstrip("\n") for line in sys.stdin) if stream else [question]
    for q in questions:
        if as_json:
            click.echo(json.dumps(engine.answer(q).to_json(), ensure_ascii=False))
        else:
            click.echo(render_text(question_reply(engine, q), commands=CLI_COMMANDS))
            if stream:
                click.echo("")
        sys.stdout.flush()
    global _quick_exit
    _quick_exit = True


@cli.command()
@click.argument("word", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON array of events.")
@knowledge_option
@click.pass_context
@_user_errors
def deadlines(
    ctx: click.Context, word: str | None, as_json: bool, knowledge_dir: Path | None
) -> None:
    """The ban's key dates and where each stands against today; WORD narrows them down
    (`history` for every date, 2017 on)."""
    from bot.handlers import deadlines_reply
    from bot.knowledge import load_knowledge
    from bot.render import CLI_COMMANDS, render_text
    from bot.timeline import Timeline, format_date, utc_now

    settings = _settings(ctx, knowledge_dir=knowledge_dir)
    timeline = Timeline(load_knowledge(settings.knowledge_dir).timeline)
    now = utc_now()
    if not as_json:
        click.echo(render_text(deadlines_reply(timeline, now, word), commands=CLI_COMMANDS))
        return
    selection = timeline.select(word)
    click.echo(
        json.dumps(
            [
                {
                    "id": e.id,
                    "date": e.date,
                    "time": e.time,
                    "zone": e.zone,
                    "when": format_date(e),
                    "standing": timeline.standing(e, now),
                    "past": timeline.is_past(e, now),
                    "key": e.key,
                    "title": e.title,
                    "what": e.what,
                    "sources": [{"title": s.title, "url": s.url} for s in e.sources],
                }
                for e in selection.events
            ],
            indent=2,
            ensure_ascii=False,
        )
    )


@cli.command()
@index_option
@click.pass_context
@_user_errors
def chat(ctx: click.Context, index_dir: Path | None) -> None:
    """A local console on the same handlers as Slack (/ban-deadlines, /ban-ask, /ban-help work)."""
    from bot.chat import run_chat

    sys.exit(run_chat(_settings(ctx, index_dir=index_dir)))


@cli.command()
@click.option(
    "--http", is_flag=True, help="Serve HTTP (POST /slack/events) instead of Socket Mode."
)
@click.option("--port", type=int, help="HTTP port (default: PORT or 3000).")
@index_option
@click.pass_context
@_user_errors
def serve(ctx: click.Context, http: bool, port: int | None, index_dir: Path | None) -> None:
    """Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, or HTTP with --http."""
    from bot.slack.serve import serve as run_server

    run_server(_settings(ctx, index_dir=index_dir), http=http, port=port)


@cli.command()
@click.pass_context
@_user_errors
def run(ctx: click.Context) -> None:
    """Socket Mode when SLACK_BOT_TOKEN and SLACK_APP_TOKEN are set, the local chat otherwise."""
    settings: Settings = ctx.obj
    if settings.has_socket_mode_tokens:
        from bot.slack.serve import serve as run_server

        run_server(settings, http=False, port=None)
        return
    from bot.chat import run_chat

    if sys.stdin.isatty():
        click.echo("No Slack tokens set: starting the local chat (Ctrl-D to quit).", err=True)
    sys.exit(run_chat(settings))


@cli.command("eval")
@click.option(
    "--cases",
    "case_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="An eval file (repeatable; default: every suite in tests/eval/).",
)
@index_option
@click.option("--show-failures", is_flag=True, help="List the cases that missed.")
@click.option(
    "--half",
    type=click.Choice(["all", "tune", "held-out"]),
    default="all",
    show_default=True,
    help="Whose misses --show-failures lists (tune on one half, report the other).",
)
@click.pass_context
@_user_errors
def eval_command(
    ctx: click.Context,
    case_files: tuple[Path, ...],
    index_dir: Path | None,
    show_failures: bool,
    half: str,
) -> None:
    """Score answers on the eval suites, all cases and each half; exit 1 below the thresholds
    (floors) kept in them, and list the held-out targets not yet met."""
    from bot.answer import Engine
    from bot.evaluate import SUITES, evaluate, load_suite

    settings = _settings(ctx, index_dir=index_dir)
    engine = Engine.load(settings)
    below: list[str] = []
    short: list[str] = []
    for i, path in enumerate(case_files or [p for p in SUITES if p.is_file()]):
        report = evaluate(engine, load_suite(path))
        text = report.render(show_failures=show_failures, half=half)
        click.echo(("\n" if i else "") + text)
        below += report.below
        short += report.short_of_targets
    if short:
        click.echo("\nheld-out targets not yet met: " + ", ".join(short))
    if below:
        raise click.ClickException("eval below thresholds: " + ", ".join(below))


@cli.command()
@click.option(
    "--since",
    "since_days",
    type=click.IntRange(min=1),
    metavar="DAYS",
    help="Only the last DAYS days (default: all that is kept, BAN_BOT_RETENTION_DAYS).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object: the groups and the questions the experts answered.",
)
@click.option(
    "--drafts",
    "drafts_dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Also write each question the experts answered as a draft entry (YAML, no sources: "
    "`ban-bot index build` refuses it until a curator sources it) into DIR.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="How alike (cosine) questions must be to share a group (default 0.75); "
    "higher gives more, finer groups.",
)
@index_option
@click.pass_context
@_user_errors
def report(
    ctx: click.Context,
    since_days: int | None,
    as_json: bool,
    drafts_dir: Path | None,
    threshold: float | None,
    index_dir: Path | None,
) -> None:
    """Declined and 👎 questions grouped by meaning, most asked first, and what the experts
    answered: what to add next."""
    from bot.report import build_report, render_text, write_drafts

    result = build_report(
        _settings(ctx, index_dir=index_dir), since_days=since_days, threshold=threshold
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_text(result))
    if drafts_dir is not None:
        written = write_drafts(result, drafts_dir)
        what = f"{len(written)} draft{'s' if len(written) != 1 else ''}"
        # On standard error, so that the report (or its JSON) stays alone on standard output.
        click.echo(f"wrote {what} to {drafts_dir}", err=True)


# Set by a command that leaves nothing to clean up once its output is written (``ask``): the
# process then ends without the interpreter's teardown (about 80 ms of freeing the encoder and
# every module), which is most of what a one-question ``ban-bot ask`` waits for after its answer.
_quick_exit = False


def main() -> None:
    try:
        cli(prog_name="ban-bot")
    except SystemExit as done:
        if _quick_exit and done.code in (0, None):
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except OSError:  # a closed pipe: let the usual exit report it
                raise done from None
            logging.shutdown()
            os._exit(0)
        raise


if __name__ == "__main__":
    main()
