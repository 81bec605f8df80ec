"""The message search page: `/search?q=` as a full page, and its results alone for htmx (live as you type in the
page or in the chat page's search panel, and the "older results" pages). `?in=<conversation id>` keeps the
search to one conversation ("in this conversation"). The search itself, and who may see what, is
`chat.actions.search_messages`."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from chat import actions
from chat.errors import ChatError

PAGE_SIZE = 20


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """The search page, or (htmx) its results alone; `q` the words, `before` a page of older hits, `in` a scope."""
    query = request.GET.get("q", "")
    before = request.GET.get("before") or None
    scope = request.GET.get("in") or ""
    hits: list[actions.SearchHit] = []
    error = ""
    if query.strip():
        try:
            hits = actions.search_messages(request.user, query, limit=PAGE_SIZE, before=before, conversation=scope)
        except ChatError as exc:
            error = str(exc)
    context = {
        "query": query,
        "scope": scope,
        "hits": hits,
        "error": error,
        "next_before": hits[-1].id if len(hits) == PAGE_SIZE else None,
        # A request for older results answers with the next items of the list, not a new list.
        "continuation": before is not None,
    }
    template = "chat/_search_results.html" if request.htmx else "chat/search.html"
    return render(request, template, context)
