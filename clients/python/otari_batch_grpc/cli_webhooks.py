"""`otari-batch webhooks ...`: your webhook endpoints from the command line (WebhookService).

otari-batch webhooks create https://hooks.example.com/otari --events terminal
otari-batch webhooks list
otari-batch webhooks deliveries whe_...
otari-batch webhooks test whe_...
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from otari_batch_grpc.v1 import webhook_service_pb2 as pb

if TYPE_CHECKING:
    from otari_batch_grpc.client import BatchClient


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """`webhooks` and its commands, under the top-level `commands`."""
    webhooks = commands.add_parser("webhooks", parents=[common], help="register and manage webhook endpoints")
    actions = webhooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[common], help="register an endpoint (prints its secret once)")
    create.add_argument("url", metavar="URL", help="https:// URL the events are POSTed to")
    update = actions.add_parser("update", parents=[common], help="change an endpoint")
    update.add_argument("endpoint_id", metavar="ID")
    update.add_argument("--url", help="a new URL")
    switch = update.add_mutually_exclusive_group()
    switch.add_argument("--enable", dest="enabled", action="store_const", const=True, help="send its events again")
    switch.add_argument("--disable", dest="enabled", action="store_const", const=False, help="hold its events")
    for command, default in ((create, "terminal"), (update, None)):
        command.add_argument(
            "--events", choices=("terminal", "all"), default=default, help="terminal statuses only, or every move"
        )
        command.add_argument(
            "--filter",
            metavar="K=V",
            action="append",
            default=None,
            help="only batches whose metadata has this pair (repeatable)",
        )
        command.add_argument("--description", default=None, help="for people")
    actions.add_parser("list", parents=[common], help="list your endpoints")
    rotate = actions.add_parser("rotate", parents=[common], help="a new signing secret (prints it once)")
    rotate.add_argument(
        "--overlap", type=float, default=86400.0, metavar="SECONDS", help="the old secret signs too this long"
    )
    deliveries = actions.add_parser("deliveries", parents=[common], help="an endpoint's recent deliveries")
    deliveries.add_argument("--limit", type=int, default=20, metavar="N", help="at most N (default 20)")
    shown = (actions.add_parser(n, parents=[common], help=h) for n, h in _ONE_ENDPOINT.items())
    for command in (rotate, deliveries, *shown):
        command.add_argument("endpoint_id", metavar="ID")


_ONE_ENDPOINT = {"get": "show an endpoint", "delete": "delete an endpoint", "test": "send a test event now"}


async def run(client: BatchClient, args: argparse.Namespace) -> int:
    from otari_batch_grpc.cli import EXIT_FAILED, EXIT_OK, parse_metadata, to_json

    hooks = client.webhooks
    action = args.webhooks_command
    filters = None if getattr(args, "filter", None) is None else parse_metadata(args.filter)
    if action == "create":
        endpoint, secret = await hooks.create(
            args.url, events=args.events, metadata_filter=filters, description=args.description or ""
        )
        _show(endpoint, args.json, to_json)
        print(f"signing secret (shown only now): {secret}", file=sys.stderr)
    elif action == "update":
        given = {"url": args.url, "events": args.events, "description": args.description, "enabled": args.enabled}
        changes = {name: value for name, value in given.items() if value is not None}
        _show(await hooks.update(args.endpoint_id, metadata_filter=filters, **changes), args.json, to_json)
    elif action == "list":
        for endpoint in await hooks.list():
            _show(endpoint, args.json, to_json)
    elif action == "get":
        _show(await hooks.get(args.endpoint_id), args.json, to_json)
    elif action == "rotate":
        endpoint, secret = await hooks.rotate_secret(args.endpoint_id, overlap_seconds=args.overlap)
        _show(endpoint, args.json, to_json)
        print(f"new signing secret (shown only now): {secret}", file=sys.stderr)
    elif action == "delete":
        await hooks.delete(args.endpoint_id)
    elif action == "test":
        tried = await hooks.send_test(args.endpoint_id)
        print(to_json(tried) if args.json else f"{tried.webhook_id} {tried.status_code or '-'} {tried.error}".strip())
        return EXIT_OK if tried.delivered else EXIT_FAILED
    elif action == "deliveries":
        for delivery in await hooks.deliveries(args.endpoint_id, page_size=args.limit):
            print(to_json(delivery) if args.json else _delivery_line(delivery))
    return EXIT_OK


def _show(endpoint: pb.WebhookEndpoint, as_json: bool, to_json: Any) -> None:
    if as_json:
        print(to_json(endpoint))
        return
    events = pb.WebhookEvents.Name(endpoint.events).removeprefix("WEBHOOK_EVENTS_").lower()
    state = "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason})"
    print(f"{endpoint.id}  {events:<8} {state}  {endpoint.url}")


def _delivery_line(delivery: pb.WebhookDelivery) -> str:
    state = pb.WebhookDeliveryState.Name(delivery.state).removeprefix("WEBHOOK_DELIVERY_STATE_").lower()
    answer = delivery.last_status_code or "-"
    return (
        f"{delivery.webhook_id}  {delivery.type:<16} {delivery.batch_id}  {state:<10} "
        f"tries {delivery.attempts}, last {answer} {delivery.last_error}"
    ).rstrip()
