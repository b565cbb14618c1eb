"""Deployments: status, the version served, the traffic split (variants, sticky key, shadow) and
the latest canary rollout with its recorded steps, the server's loaded versions and live request,
error and latency figures, a "try the model" form generated from the signature, start and stop
(writers).

Predictions and figures come from the model server's public API: in process when the UI is
mounted in ``fti serve``, over HTTP when an ``fti serve`` of the project runs elsewhere; with no
server running, the form predicts in this process (the model is loaded here once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse
from starlette.routing import Route

from fti.errors import FtiError
from fti.ui import tryit
from fti.ui.endpoints import action, page
from fti.ui.render import render_page
from fti.ui.serverlink import live_figures

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from fti.ui.session import Viewer
    from fti.ui.state import UiState


def _state(request: Request) -> UiState:
    state: UiState = request.app.state.ui
    return state


def list_deployments(request: Request, viewer: Viewer) -> Response:
    rows = []
    for deployment in viewer.project.serving.list():
        try:
            mv, problem = deployment.model_version(), None
        except FtiError as exc:  # e.g. the alias was removed: show why nothing is served
            mv, problem = None, exc.message
        rows.append((deployment, mv, problem))
    link = _state(request).link(viewer.project)
    return render_page(
        request,
        viewer,
        "deployments.html",
        section="deployments",
        rows=rows,
        where=link.where if link else None,
    )


def _rollout(viewer: Viewer, name: str) -> dict[str, Any] | None:
    """The deployment's latest canary rollout as ``Rollout.status()`` gives it, or None."""
    from fti.errors import NotFoundError

    try:
        return viewer.project.serving.get_rollout(name).status()
    except NotFoundError:
        return None


def deployment_detail(request: Request, viewer: Viewer) -> Response:
    deployment = viewer.project.serving.get(request.path_params["name"])
    form, problem, mv = None, None, None
    try:
        mv = deployment.model_version()
        form = tryit.build_form(mv, deployment.spec.enrich)
    except FtiError as exc:
        problem = exc.message
    link = _state(request).link(viewer.project)
    return render_page(
        request,
        viewer,
        "deployment.html",
        section="deployments",
        deployment=deployment,
        champion_share=100 - sum(w for _, _, w in deployment.spec.variants),
        rollout=_rollout(viewer, deployment.name),
        mv=mv,
        form=form,
        problem=problem,
        where=link.where if link else None,
    )


async def live(request: Request, viewer: Viewer) -> Response:
    name = request.path_params["name"]
    link = await run_in_threadpool(_state(request).link, viewer.project)
    context: dict[str, Any] = {"name": name, "where": None, "figures": None, "loaded": [], "error": None}
    if link is not None:
        context["where"] = link.where
        index = await link.request("POST", "/v2/repository/index", viewer.principal, {})
        metrics = await link.request("GET", "/metrics", viewer.principal)
        if index.status != 200 or metrics.status != 200:
            context["error"] = index.error if index.status != 200 else metrics.error
        else:
            context["loaded"] = [e for e in index.body if e.get("name") == name]
            context["figures"] = live_figures(str(metrics.body), name)
    return await run_in_threadpool(lambda: render_page(request, viewer, "_live.html", **context))


@action("reader", "predicting")
async def predict(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    state = _state(request)
    name = request.path_params["name"]

    def prepare() -> tuple[Any, Any, list[dict[str, Any]]]:
        deployment = state.deployment(viewer.project, name)
        mv = deployment.model_version()
        fields = tryit.build_form(mv, deployment.spec.enrich)
        return deployment, mv, tryit.request_inputs(fields, form)

    result, error, where = None, None, None
    try:
        deployment, mv, inputs = await run_in_threadpool(prepare)
        link = await run_in_threadpool(state.link, viewer.project)
        if link is not None:
            where = link.where
            answer = await link.request(
                "POST", f"/v2/models/{name}/infer", viewer.principal, {"inputs": inputs}
            )
            if answer.status != 200:
                error = f"{answer.status}: {answer.error}"
            else:
                result = tryit.prediction(tryit.first_row(answer.body["outputs"]), mv.signature.classes)
        else:  # no model server runs: predict here, through the same dataplane code
            where = "none running; predicted in the UI process"
            row = {i["name"]: i["data"][0] for i in inputs}
            outputs = await run_in_threadpool(deployment.predict, row)
            result = tryit.prediction({k: v[0] for k, v in outputs.items()}, mv.signature.classes)
    except FtiError as exc:
        error = tryit.error_message(exc)
    status = 200 if error is None else 400
    return await run_in_threadpool(
        lambda: render_page(
            request, viewer, "_prediction.html", status=status, result=result, error=error, where=where
        )
    )


def _set_status(request: Request, viewer: Viewer, running: bool) -> Response:
    deployment = viewer.project.serving.get(request.path_params["name"])
    if running:
        deployment.start()
    else:
        deployment.stop()
    return RedirectResponse(
        f"{request.scope.get('root_path', '')}/deployments/{deployment.name}", status_code=303
    )


@action("writer", "starting a deployment")
def start(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    return _set_status(request, viewer, True)


@action("writer", "stopping a deployment")
def stop(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    return _set_status(request, viewer, False)


routes = [
    Route("/deployments", page(list_deployments), name="deployments"),
    Route("/deployments/{name}", page(deployment_detail), name="deployment"),
    Route("/deployments/{name}/live", page(live), name="deployment_live"),
    Route("/deployments/{name}/predict", predict, methods=["POST"], name="predict"),
    Route("/deployments/{name}/start", start, methods=["POST"], name="start_deployment"),
    Route("/deployments/{name}/stop", stop, methods=["POST"], name="stop_deployment"),
]
