"""List a user's generations and delete the older ones, keeping the newest N.

Spends credits: no (listing and deleting are free). Deleting cannot be undone, so this is
a dry run unless you pass --yes: it prints what it would delete and deletes nothing.
Reads the API key from the LEONARDO_API_KEY environment variable. With --offline it runs
against FakeLeonardo, the fake API shipped in leonardo_client.testing (no key, no network),
after making a few fake generations so there is something to list.

Your user id: the "user.id" of GET /me (user_details[0].user.id), or the Leonardo web app.

    python examples/list_and_delete.py <your user id> --keep 50          # dry run
    python examples/list_and_delete.py <your user id> --keep 50 --yes    # really delete
    python examples/list_and_delete.py --offline --keep 1 --yes
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any, Dict, List, Optional

from leonardo_client import Client, LeonardoError
from leonardo_client.errors import error_text

PAGE = 50
MOST = 5000  # generations looked at, at most: the loop below always ends


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Delete all but the newest N generations of a user.")
    parser.add_argument("user_id", nargs="?", help="your user id (not needed with --offline)")
    parser.add_argument("--keep", type=int, default=20, help="newest generations to keep (default: 20)")
    parser.add_argument("--yes", action="store_true", help="really delete (default: a dry run)")
    parser.add_argument("--offline", action="store_true", help="use the built-in fake API")
    args = parser.parse_args(argv)
    if args.keep < 0:
        parser.error("--keep must be 0 or more")

    with contextlib.ExitStack() as stack:
        if args.offline:
            from leonardo_client.testing import FakeLeonardo

            fake = stack.enter_context(FakeLeonardo())
            client = stack.enter_context(Client(api_key=fake.api_key, base_url=fake.base_url))
            user_id = fake.user_id
            for n in range(min(args.keep, 20) + 2):  # 2 more than --keep, 22 at most
                client.create_generation({"prompt": f"fake generation {n}", "num_images": 1})
        elif args.user_id:
            client = stack.enter_context(Client())  # reads LEONARDO_API_KEY
            user_id = args.user_id
        else:
            parser.error("give your user id")

        generations: Dict[str, Dict[str, Any]] = {}  # by id: one made meanwhile shows an entry on two pages
        offset = 0
        while offset < MOST:  # a page may hold fewer than asked (a server may cap it): only an empty one is the end
            page = client.get_generations_by_user_id(user_id, limit=PAGE, offset=offset).get("generations") or []
            if not page:
                break
            offset += len(page)
            # one that is not an object with an id cannot be deleted
            generations.update((g["id"], g) for g in page if isinstance(g, dict) and isinstance(g.get("id"), str))
        newest_first = sorted(generations.values(), key=lambda g: str(g.get("createdAt")), reverse=True)
        old = newest_first[args.keep:]
        print(f"{len(generations)} generations, keeping the newest {min(args.keep, len(generations))}")

        for generation in old:
            label = f"{generation['id']}  {generation.get('createdAt')}  {str(generation.get('prompt'))[:40]!r}"
            if args.yes:
                gone = client.delete_generation_by_id(generation["id"]).get("delete_generations_by_pk")
                print("deleted" if gone else "not found (deleted meanwhile?)", label)
            else:
                print("would delete", label)
        if old and not args.yes:
            print(f"dry run: pass --yes to delete these {len(old)} generations")
    return 0


if __name__ == "__main__":
    if sys.stdout is None:  # started with stdout closed (>&-): what it prints would be lost
        sys.exit("error: stdout is closed")
    try:
        status = main()
        sys.stdout.flush()  # a closed or full stdout fails here, inside the try
    except KeyboardInterrupt:
        status = 130
        print("interrupted", file=sys.stderr)
    except (LeonardoError, OSError, ValueError) as err:  # the API, a file, or stdout: one line
        status = 1
        print(f"error: {error_text(err)}", file=sys.stderr)
        if isinstance(err, OSError):  # stdout may be what failed: keep exit from failing again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)
