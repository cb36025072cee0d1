"""`otari-batch`: the BatchService from a shell, over the Python client.

    otari-batch submit requests.jsonl --model openai:gpt-4o-mini --wait
    otari-batch results batch_abc -o output.jsonl

The input file takes the lines of an OpenAI batch input file (`{"custom_id", "method", "url", "body"}`, or just
`{"custom_id", "body"}`); `results` writes the lines of an OpenAI batch output file. Exit codes: 0 ok, 2 bad
usage or input (INVALID_ARGUMENT), 3 not found, 4 not allowed (UNAUTHENTICATED, PERMISSION_DENIED), 5 failed
precondition (results of a batch not completed), 6 unavailable or deadline exceeded, 1 anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import grpc
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.message import Message

from otari_batch_grpc import cli_webhooks
from otari_batch_grpc.client import BatchClient, BatchError
from otari_batch_grpc.v1 import batch_pb2, result_pb2, watch_pb2

PROG = "otari-batch"
DEFAULT_TARGET = "127.0.0.1:50051"
CHAT_COMPLETIONS_URL = "/v1/chat/completions"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_AUTH = 4
EXIT_PRECONDITION = 5
EXIT_UNAVAILABLE = 6

EXIT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_USAGE,
    grpc.StatusCode.NOT_FOUND: EXIT_NOT_FOUND,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_AUTH,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_AUTH,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_PRECONDITION,
    grpc.StatusCode.UNAVAILABLE: EXIT_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_UNAVAILABLE,
}

EXIT_INTERRUPTED = 130  # Ctrl-C, as shells count it (128 + SIGINT)
# A create that failed so: it may have made the batch (its reply was lost), and a retry with its request_id is safe.
UNKNOWN_OUTCOME = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED})
# How long to wait for the service to answer a connection before saying it is not there.
CONNECT_SECONDS = 5.0


class InputError(Exception):
    """Bad input found before any call: exit 2."""


# -- the input file -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Requests:
    """The requests of an input file, and the file line each came from (to point at it in errors)."""

    source: str
    items: list[tuple[str, dict[str, Any]]]
    lines: list[int]


def read_requests(path: str) -> Requests:
    """The lines of an OpenAI batch input file (`-` is standard input); blank lines are skipped."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    source = "<stdin>" if path == "-" else path
    items: list[tuple[str, dict[str, Any]]] = []
    lines: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not a JSON line ({exc.msg} at column {exc.colno})") from None
        if not isinstance(entry, dict):
            raise InputError(f'{where}: expected an object {{"custom_id": ..., "body": {{...}}}}')
        custom_id, body = entry.get("custom_id"), entry.get("body")
        if custom_id is None:
            raise InputError(f'{where}: custom_id is missing (each line is {{"custom_id": "...", "body": {{...}}}})')
        if not isinstance(custom_id, str):
            raise InputError(f"{where}: custom_id must be a string, not {type(custom_id).__name__}")
        if not isinstance(body, dict):
            raise InputError(f"{where}: body must be an object (the chat-completion request)")
        method = entry.get("method", "POST")
        if not isinstance(method, str) or method.upper() != "POST":
            raise InputError(f"{where}: method must be POST; got {method!r}")
        url = entry.get("url", CHAT_COMPLETIONS_URL)
        if url != CHAT_COMPLETIONS_URL:
            raise InputError(f"{where}: only {CHAT_COMPLETIONS_URL} batches are supported; got url {url!r}")
        items.append((custom_id, body))
        lines.append(number)
    if not items:
        raise InputError(f"{source}: no requests in it")
    return Requests(source, items, lines)


def without_request_id(argv: Sequence[str]) -> list[str]:
    """The command line as typed, less any --request-id (to give it again with the one a failed create sent)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--request-id":
            skip = True
        elif not arg.startswith("--request-id="):
            out.append(arg)
    return out


def check_models(requests: Requests, model: str) -> None:
    """A batch runs one model, --model's, whatever each body says: a body naming another is a mistake."""
    bare = re.split(r"[:/]", model, maxsplit=1)[-1]
    for (_, body), line in zip(requests.items, requests.lines, strict=True):
        named = body.get("model")
        if named is not None and named not in (model, bare):
            raise InputError(
                f"{requests.source}:{line}: body.model is {named!r} but --model is {model}: a batch runs every "
                "request with one model (drop body.model, or submit these requests with their own --model)"
            )


def parse_metadata(pairs: Sequence[str]) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for pair in pairs:
        key, found, value = pair.partition("=")
        if not found:
            raise InputError(f"--metadata takes key=value pairs; got {pair!r}")
        metadata[key] = value
    return metadata


# -- output ---------------------------------------------------------------------------------------------------
def to_json(message: Message) -> str:
    """One line of canonical proto3 JSON (as buf curl and grpcurl print it)."""
    return json_format.MessageToJson(message, indent=None)


def status_name(batch: batch_pb2.Batch) -> str:
    return batch.upstream_status or batch_pb2.BatchStatus.Name(batch.status).removeprefix("BATCH_STATUS_").lower()


def counts(batch: batch_pb2.Batch) -> str:
    c = batch.request_counts
    return f"{c.completed + c.failed}/{c.total}" + (f" ({c.failed} failed)" if c.failed else "")


def when(stamp: timestamp_pb2.Timestamp) -> str:
    return stamp.ToDatetime().isoformat(timespec="seconds") + "Z" if stamp.seconds else "-"


def describe(batch: batch_pb2.Batch) -> str:
    rows = [
        ("id", batch.id),
        ("status", status_name(batch)),
        ("provider", batch.provider),
        ("model", batch.model),
        ("requests", counts(batch)),
        ("created", when(batch.created_at)),
    ]
    if batch.user:
        rows.append(("user", batch.user))
    if batch.request_id:
        rows.append(("request_id", batch.request_id))
    if batch.HasField("output_file_id"):
        rows.append(("output_file", batch.output_file_id))
    if batch.metadata:
        rows.append(("metadata", ", ".join(f"{k}={v}" for k, v in sorted(batch.metadata.items()))))
    rows += [("error", f"{e.code}: {e.message}") for e in batch.errors]
    return "\n".join(f"{name:<13}{value}" for name, value in rows)


def summary(batch: batch_pb2.Batch) -> str:
    return f"{batch.id}  {status_name(batch):<11} {batch.provider:<10} {counts(batch):<8} {when(batch.created_at)}"


def plain(message: Message) -> dict[str, Any]:
    """A result message as the gateway's JSON: `extra` merged back in, int64 as numbers (not proto3's strings)."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.full_name == "google.protobuf.Struct":
            found = _numbers(json_format.MessageToDict(value))
            if field.name == "extra":
                out.update(found)
            else:
                out[field.name] = found
        elif field.message_type is not None:
            out[field.name] = [plain(v) for v in value] if field.is_repeated else plain(value)
        else:
            out[field.name] = list(value) if field.is_repeated else value
    return out


def _numbers(value: Any) -> Any:
    """Struct keeps every number as a double: give whole numbers back as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def output_line(result: result_pb2.BatchResult) -> dict[str, Any]:
    """A line of an OpenAI batch output file: the custom_id, and the response or the error."""
    if result.HasField("completion"):
        body = plain(result.completion)
        return {"custom_id": result.custom_id, "response": {"status_code": 200, "body": body}, "error": None}
    return {"custom_id": result.custom_id, "response": None, "error": plain(result.error)}


# Where the service's words name a field of the contract, the flag of this command that sets it.
FLAGS = {"provider": "--provider", "model": "--model", "request_id": "--request-id", "user": "--user"}


def in_flags(error: BatchError) -> str | None:
    """The service's message said in this command's terms, for the errors whose remedy is a flag."""
    meta = error.metadata
    if error.reason == "BATCH_NOT_COMPLETED" and meta.get("status") != "cancelling":
        return (
            f"batch {meta.get('batch_id', '')} is {meta.get('status', 'not completed')}: its results come once it "
            "completes; add --wait to wait for them"
        )
    if error.reason in ("CREATE_IN_PROGRESS", "CREATE_OUTCOME_UNKNOWN"):
        return (
            f"the create with --request-id {meta.get('request_id', '')} is not settled yet (it may have made the "
            "batch); nothing was created now: run the same command again later"
        )
    return None


def error_line(error: BatchError, requests: Requests | None = None) -> str:
    """One line for stderr: code, reason, message, each field violation (pointing at the file line and named by
    its flag), retry."""
    own = in_flags(error)
    parts = [own] if own else [] if error.repeats_first_violation else [" ".join(error.message.split())]
    text = f"{PROG}: {error.code.name}" + (f" {error.reason}" if error.reason else "") + ": "
    for violation in error.field_violations:
        if violation.field in FLAGS:
            described = re.sub(r"\(pass [^)]*\)", f"(name it with {FLAGS[violation.field]})", violation.description)
            parts.append(f"{FLAGS[violation.field]}: {described}")
            continue
        parts.append(f"{violation.field}: {violation.description}")
        found = re.match(r"requests\[(\d+)\]", violation.field)
        if requests is not None and found and int(found.group(1)) < len(requests.lines):
            parts[-1] += f" ({requests.source} line {requests.lines[int(found.group(1))]})"
    text += "; ".join(parts)
    if error.retry_after is not None:
        text += f" (retry after {error.retry_after:g}s)"
    return text


# -- progress on stderr ---------------------------------------------------------------------------------------
class Progress(Protocol):
    def show(self, description: str, done: int, total: int | None) -> None: ...

    def close(self) -> None: ...


class RichProgress:
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._task = self._bar.add_task("", total=None)
        self._bar.start()

    def show(self, description: str, done: int, total: int | None) -> None:
        self._bar.update(self._task, description=description, completed=done, total=total or None)

    def close(self) -> None:
        self._bar.stop()


class LineProgress:
    """Without rich: a line on stderr when the description changes, and at the end."""

    def __init__(self) -> None:
        self._last = ""

    def show(self, description: str, done: int, total: int | None) -> None:
        line = f"{description} {done}/{total or '?'}"
        if line != self._last:
            print(line, file=sys.stderr, flush=True)
            self._last = line

    def close(self) -> None:
        pass


def progress() -> Progress:
    try:
        return RichProgress()
    except ImportError:
        print(
            f"{PROG}: no progress bar: the 'rich' package is not installed "
            "(pip install 'otari-batch-grpc-client[cli]'); showing progress as lines",
            file=sys.stderr,
            flush=True,
        )
        return LineProgress()


@contextlib.contextmanager
def showing_progress() -> Iterator[Progress]:
    bar = progress()
    try:
        yield bar
    finally:
        bar.close()


def show_batch(bar: Progress, batch: batch_pb2.Batch) -> None:
    c = batch.request_counts
    bar.show(f"{batch.id} {status_name(batch)}", c.completed + c.failed, c.total)


# -- the commands ---------------------------------------------------------------------------------------------
async def cmd_submit(client: BatchClient, args: argparse.Namespace) -> int:
    requests = read_requests(args.file)
    check_models(requests, args.model)
    metadata = parse_metadata(args.metadata)
    bar: Progress | None = None

    def uploaded(sent: int, total: int) -> None:  # a batch large enough to go up in chunks: show it going
        nonlocal bar
        bar = bar or progress()
        bar.show("uploading requests", sent, total)

    try:
        batch = await client.create(
            args.model,
            requests.items,
            request_id=args.request_id,
            metadata=metadata,
            user=args.user,
            max_attempts=args.max_attempts,
            on_upload=uploaded,
            # a batch of many parts takes a while: minutes for a million requests (Ctrl-C ends an upload unmade)
            deadline=60.0 + len(requests.items) / 1000,
        )
    except BatchError as error:
        print(error_line(error, requests), file=sys.stderr)
        if error.request_id and error.code in UNKNOWN_OUTCOME:
            again = " ".join([PROG, *without_request_id(args.argv), "--request-id", error.request_id])
            print(
                f"{PROG}: the batch may have been created: run again with --request-id {error.request_id} to get it "
                f"rather than make a second one:\n  {again}",
                file=sys.stderr,
            )
        return exit_code(error)
    finally:
        if bar is not None:
            bar.close()
    if not args.wait:
        print(to_json(batch) if args.json else batch.id, flush=True)
        return EXIT_OK
    if not args.json:
        print(batch.id, flush=True)  # at once: a script has the id while the batch runs
    try:
        batch = await follow(client, batch)
    except asyncio.CancelledError:  # Ctrl-C: the batch goes on without us
        print(
            f"\n{PROG}: interrupted; batch {batch.id} runs on. Follow it with `{PROG} watch {batch.id}`, or get its "
            f"results once done with `{PROG} results {batch.id} --wait`",
            file=sys.stderr,
        )
        raise
    if args.json:
        print(to_json(batch), flush=True)
    return finished(batch)


async def follow(client: BatchClient, batch: batch_pb2.Batch) -> batch_pb2.Batch:
    """Watch the batch to its end with a progress bar; its last state."""
    with showing_progress() as bar:
        show_batch(bar, batch)
        async for event in client.watch(batch.id, provider=batch.provider):
            if event.HasField("batch"):
                batch = event.batch
                show_batch(bar, batch)
    return batch


def finished(batch: batch_pb2.Batch) -> int:
    if batch.status == batch_pb2.BATCH_STATUS_COMPLETED:
        print(f"{PROG}: batch {batch.id} completed: {counts(batch)}", file=sys.stderr)
        return EXIT_OK
    print(f"{PROG}: batch {batch.id} ended {status_name(batch)}: {counts(batch)}", file=sys.stderr)
    return EXIT_FAILED


async def cmd_get(client: BatchClient, args: argparse.Namespace) -> int:
    batch = await client.get(args.batch_id, provider=args.provider)
    print(to_json(batch) if args.json else describe(batch))
    return EXIT_OK


async def cmd_list(client: BatchClient, args: argparse.Namespace) -> int:
    shown, token = 0, ""
    while shown < args.limit:
        page = await client.list_page(args.provider, page_size=min(args.limit - shown, 100), page_token=token)
        for batch in page.batches[: args.limit - shown]:
            print(to_json(batch) if args.json else summary(batch))
            shown += 1
        if page.incomplete_providers:
            names = ", ".join(page.incomplete_providers)
            print(f"{PROG}: could not ask {names} for their newest batches: some may be missing", file=sys.stderr)
        token = page.next_page_token
        if not token:
            break
    return EXIT_OK


async def cmd_cancel(client: BatchClient, args: argparse.Namespace) -> int:
    batch = await client.cancel(args.batch_id, provider=args.provider)
    print(to_json(batch) if args.json else f"{batch.id} {status_name(batch)}")
    return EXIT_OK


async def cmd_watch(client: BatchClient, args: argparse.Namespace) -> int:
    async for event in client.watch(args.batch_id, provider=args.provider):
        if args.json:
            print(to_json(event), flush=True)
        elif event.kind != watch_pb2.BATCH_EVENT_KIND_HEARTBEAT:
            kind = watch_pb2.BatchEventKind.Name(event.kind).removeprefix("BATCH_EVENT_KIND_").lower()
            batch = event.batch
            print(
                f"{when(event.observed_at)}  {kind:<8} {batch.id}  {status_name(batch):<11} {counts(batch)}", flush=True
            )
    return EXIT_OK


async def cmd_results(client: BatchClient, args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(showing_progress()) if args.wait else None
        on_progress = None if bar is None else (lambda batch: show_batch(bar, batch))
        stream = client.results(args.batch_id, provider=args.provider, wait=args.wait, on_progress=on_progress)
        out, commit = stack.enter_context(_output(args.output))
        written = 0
        async for result in stream:
            out.write(json.dumps(output_line(result), ensure_ascii=False) + "\n")
            written += 1
            if bar is not None:
                bar.show(f"{args.batch_id} results", written, stream.total)
        commit()
    where = f" to {args.output}" if args.output else ""
    if stream.total is not None and written < stream.total:
        print(f"{PROG}: the gateway returned {written} of {stream.total} results{where}", file=sys.stderr)
    elif args.output:
        print(f"{PROG}: wrote {written} result{'' if written == 1 else 's'}{where}", file=sys.stderr)
    return EXIT_OK


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[tuple[IO[str], Callable[[], None]]]:
    """Standard output, or a file that appears (replacing any old one) only once every result is written."""
    if path is None:
        yield sys.stdout, sys.stdout.flush
        return
    target = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    done = False

    def commit() -> None:
        nonlocal done
        handle.close()
        os.replace(temp, target)
        done = True

    with open(fd, "w", encoding="utf-8") as handle:
        try:
            yield handle, commit
        finally:
            if not done:
                handle.close()
                Path(temp).unlink(missing_ok=True)


COMMANDS = {
    "submit": cmd_submit,
    "get": cmd_get,
    "list": cmd_list,
    "cancel": cmd_cancel,
    "watch": cmd_watch,
    "results": cmd_results,
    "webhooks": cli_webhooks.run,
}


# -- the command line -----------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG,
        description="The otari Batch API over gRPC: submit JSONL batches, follow them, fetch their results.",
        epilog="exit codes: 0 ok, 2 bad usage or input, 3 not found, 4 not allowed (key), 5 failed precondition "
        "(e.g. results of a batch not completed), 6 unavailable or deadline exceeded, 130 interrupted (Ctrl-C), "
        "1 anything else",
    )
    add_global_options(top, defaults=True)
    # The same options after the command too (`otari-batch list --json`); SUPPRESS keeps the top level's value
    # unless the option is given there.
    common = argparse.ArgumentParser(add_help=False)
    add_global_options(common, defaults=False)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser("submit", parents=[common], help="create a batch from a JSONL file of requests")
    submit.add_argument("file", metavar="FILE.jsonl", help='lines {"custom_id": ..., "body": {...}} (- for stdin)')
    submit.add_argument("--model", required=True, help="provider:model, for example openai:gpt-4o-mini")
    submit.add_argument("--wait", action="store_true", help="follow the batch to its end with a progress bar")
    submit.add_argument("--request-id", metavar="UUID", help="idempotency key: a retry with it creates nothing new")
    submit.add_argument(
        "--metadata", metavar="K=V", action="append", default=[], help="a key=value pair for the batch (repeatable)"
    )
    submit.add_argument("--user", default="", help="the user the batch is for (with the master key, required)")
    submit.add_argument(
        "--max-attempts",
        type=int,
        default=0,
        metavar="N",
        help="run the requests whose failure is retryable again, up to N tries in all (2 to 5; the service keeps "
        "your key, encrypted, for this batch until it ends)",
    )

    get = commands.add_parser("get", parents=[common], help="show a batch")
    listing = commands.add_parser("list", parents=[common], help="list your batches, newest first")
    listing.add_argument("--provider", default="", help="only this provider's (default: every provider)")
    listing.add_argument("--limit", type=int, default=20, metavar="N", help="at most N batches (default 20)")
    cancel = commands.add_parser("cancel", parents=[common], help="cancel a batch")
    watch = commands.add_parser("watch", parents=[common], help="print a batch's events until it ends")
    results = commands.add_parser("results", parents=[common], help="write a completed batch's results as JSONL")
    results.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")
    results.add_argument("--wait", action="store_true", help="wait for the batch to complete, with a progress bar")
    for command in (get, cancel, watch, results):
        command.add_argument("batch_id", metavar="ID")
        command.add_argument("--provider", default="", help="needed only for a batch this service has not shown you")
    cli_webhooks.add_parser(commands, common)
    return top


def add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--target",
        default=default(os.environ.get("OTARI_BATCH_TARGET") or DEFAULT_TARGET),
        help=f"the service's host:port (env OTARI_BATCH_TARGET; default {DEFAULT_TARGET})",
    )
    parser.add_argument(
        "--api-key",
        default=default(os.environ.get("OTARI_API_KEY")),
        help="your otari API key (better: env OTARI_API_KEY, which keeps it out of the process list)",
    )
    parser.add_argument(
        "--json", action="store_true", default=default(False), help="print one JSON object per line (proto3 JSON)"
    )
    parser.add_argument(
        "--tls", action="store_true", default=default(False), help="connect with TLS (default: plaintext)"
    )
    parser.add_argument(
        "--ca-file", metavar="PEM", default=default(None), help="CA certificates for --tls (default: the system's)"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=default(4),
        metavar="N",
        help="retries of a call that a retry can cure (default 4)",
    )


def exit_code(error: BatchError) -> int:
    return EXIT_CODES.get(error.code, EXIT_FAILED)


def credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    if not (args.tls or args.ca_file):
        return None
    roots = Path(args.ca_file).read_bytes() if args.ca_file else None
    return grpc.ssl_channel_credentials(root_certificates=roots)


async def run(args: argparse.Namespace) -> int:
    creds = credentials(args)
    async with BatchClient(
        args.target, api_key=args.api_key, credentials=creds, max_attempts=args.retries + 1
    ) as client:
        if not await client.connected(CONNECT_SECONDS):
            print(
                f"{PROG}: nothing answers at {args.target} (waited {CONNECT_SECONDS:g}s): is the service running "
                "there? Name it with --target HOST:PORT or OTARI_BATCH_TARGET"
                + ("" if args.tls or args.ca_file else ", and add --tls if it serves TLS"),
                file=sys.stderr,
            )
            return EXIT_UNAVAILABLE
        return await COMMANDS[args.command](client, args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = argv
    if args.retries < 0:
        parser().error("--retries must be 0 or more")
    try:
        code = asyncio.run(run(args))
        sys.stdout.flush()  # here, where a reader that went away is caught, not at exit
        return code
    except InputError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BatchError as error:
        print(error_line(error), file=sys.stderr)
        return exit_code(error)
    except BrokenPipeError:  # `otari-batch get ID | head -1`: the reader went away; end quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_FAILED
    except OSError as error:  # an output file that cannot be written, a CA file that cannot be read
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
