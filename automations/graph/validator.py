"""The graph validator (SPEC §3): per-kind config checks plus the graph-level rules.

`validate_graph(graph, automation=None) -> (normalized_graph, errors, warnings)` never raises. The
normalized graph keeps only known node/edge fields and carries server-derived `ports` on every node
(ports sent by a client are ignored). It keeps every node and edge that was sent, the invalid ones
included (a second node with a key already used, a malformed node or edge): a graph is stored as sent,
so validating the stored graph again (activation does) finds the same errors. The rules below look at
the first node of each key. Errors and warnings are `{code, node_key?, port?, message}`.

Graph-level codes: invalid_graph, invalid_node, duplicate_node_key, unknown_kind, invalid_edge,
edge_unknown_source, edge_unknown_port, edge_unknown_target, edge_invalid_target_port,
duplicate_edge_port, root_missing, root_unknown, root_invalid_kind, goto_unknown_target,
cycle_without_pause; warnings: unreachable_node. Per-kind codes come from automations.nodes.*.
"""

from automations.graph.config_checks import is_warning
from automations.nodes import registry

NODE_FIELDS = ("key", "kind", "title", "canvas_x", "canvas_y", "config", "ui_state")
EDGE_FIELDS = ("from_node", "from_port", "to_node", "to_port")
TARGET_PORT = "in"
MAX_NODE_KEY_LENGTH = 100


def issue(code: str, message: str, *, node_key: str | None = None, port: str | None = None) -> dict:
    found = {"code": code}
    if node_key is not None:
        found["node_key"] = node_key
    if port is not None:
        found["port"] = port
    found["message"] = message
    return found


def _normalize_node(raw) -> dict | None:
    if not isinstance(raw, dict):
        return None
    key, kind = raw.get("key"), raw.get("kind")
    if not isinstance(key, str) or not key or len(key) > MAX_NODE_KEY_LENGTH or not isinstance(kind, str):
        return None
    node = {name: raw[name] for name in NODE_FIELDS if name in raw}
    node["config"] = registry.normalize_config(kind, raw.get("config") if raw.get("config") is not None else {})
    node["ports"] = registry.derive_ports(kind, node["config"])
    return node


def _normalize_edge(raw) -> dict | None:
    if not isinstance(raw, dict):
        return None
    edge = {name: raw.get(name) for name in EDGE_FIELDS}
    if edge["to_port"] is None:
        edge["to_port"] = TARGET_PORT
    if not all(isinstance(edge[name], str) and edge[name] for name in EDGE_FIELDS):
        return None
    return edge


def _goto_target(node: dict) -> str | None:
    if node["kind"] != "goto" or not isinstance(node["config"], dict):
        return None
    target = node["config"].get("target_node_key")
    return target if isinstance(target, str) and target else None


def _successors(nodes_by_key: dict, edges: list[dict]) -> dict[str, list[str]]:
    """Where each node can go next: its edges plus a goto's jump."""
    successors: dict[str, list[str]] = {key: [] for key in nodes_by_key}
    for edge in edges:
        if edge["from_node"] in nodes_by_key and edge["to_node"] in nodes_by_key:
            successors[edge["from_node"]].append(edge["to_node"])
    for key, node in nodes_by_key.items():
        target = _goto_target(node)
        if target in nodes_by_key:
            successors[key].append(target)
    return successors


def _strongly_connected(keys: list[str], successors: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (graphs from users can be deep)."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in keys:
        if start in index_of:
            continue
        work = [(start, 0)]
        while work:
            node, child_index = work.pop()
            if child_index == 0:
                index_of[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = successors.get(node, [])
            recurse = False
            while child_index < len(children):
                child = children[child_index]
                child_index += 1
                if child not in index_of:
                    work.append((node, child_index))
                    work.append((child, 0))
                    recurse = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index_of[child])
            if recurse:
                continue
            if low[node] == index_of[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


# The kinds that park a run, as the cycle error names them: "input, delay, wait_event or a waiting message".
_ALWAYS_WAIT = [kind for kind in registry.KINDS
                if registry.waits_of(kind) and not hasattr(registry.get(kind), "waits")]
_SOMETIMES_WAIT = [f"a waiting {kind}" for kind in registry.KINDS
                   if registry.waits_of(kind) and hasattr(registry.get(kind), "waits")]
_PAUSE_POINTS = ", ".join(_ALWAYS_WAIT) + " or " + " or ".join(_SOMETIMES_WAIT)


def _cycle_errors(nodes: list[dict], nodes_by_key: dict, successors: dict) -> list[dict]:
    """A loop the runner could spin in forever: a cycle through nodes none of which waits."""
    busy = [n["key"] for n in nodes if not registry.node_waits(n)]
    busy_set = set(busy)
    busy_successors = {key: [s for s in successors[key] if s in busy_set] for key in busy}
    order = {key: position for position, key in enumerate(busy)}
    found = []
    for component in _strongly_connected(busy, busy_successors):
        if len(component) == 1 and component[0] not in busy_successors[component[0]]:
            continue
        members = sorted(component, key=order.__getitem__)
        found.append(issue("cycle_without_pause", f"These nodes form a loop with no pause point ({_PAUSE_POINTS}): "
                           f"{', '.join(members)}.", node_key=members[0]))
    return found


def _reachable(root: str, successors: dict) -> set[str]:
    seen = {root}
    frontier = [root]
    while frontier:
        for child in successors[frontier.pop()]:
            if child not in seen:
                seen.add(child)
                frontier.append(child)
    return seen


def validate_graph(graph, *, automation=None):
    """Validate and normalize `graph`; returns (normalized_graph, errors, warnings)."""
    errors: list[dict] = []
    warnings: list[dict] = []
    if not isinstance(graph, dict):
        errors.append(issue("invalid_graph", "The graph must be an object with nodes, edges and root_node_key."))
        graph = {}
    raw_nodes = graph.get("nodes", [])
    raw_edges = graph.get("edges", [])
    root = graph.get("root_node_key")
    if not isinstance(raw_nodes, list):
        errors.append(issue("invalid_graph", "graph.nodes must be a list."))
        raw_nodes = []
    if not isinstance(raw_edges, list):
        errors.append(issue("invalid_graph", "graph.edges must be a list."))
        raw_edges = []

    nodes: list[dict] = []
    nodes_by_key: dict[str, dict] = {}
    stored_nodes: list = []  # every node sent, in order: what is saved
    for index, raw in enumerate(raw_nodes):
        node = _normalize_node(raw)
        if node is None:
            errors.append(issue("invalid_node", f"graph.nodes[{index}] needs a string key (1-{MAX_NODE_KEY_LENGTH} "
                                                "chars) and a string kind."))
            stored_nodes.append(raw)
            continue
        stored_nodes.append(node)
        if node["key"] in nodes_by_key:
            errors.append(issue("duplicate_node_key", f"Node key {node['key']!r} is used more than once.",
                                node_key=node["key"]))
            continue
        nodes.append(node)
        nodes_by_key[node["key"]] = node

    for node in nodes:
        try:
            module = registry.get(node["kind"])
        except KeyError:
            errors.append(issue("unknown_kind", f"Unknown node kind {node['kind']!r}; use one of "
                                f"{', '.join(registry.KINDS)}.", node_key=node["key"]))
            continue
        for found in module.validate(node["config"], automation=automation):
            target = warnings if is_warning(found) else errors
            target.append(issue(found["code"], found["message"], node_key=node["key"], port=found.get("port")))
        goto_target = _goto_target(node)
        if goto_target is not None and goto_target not in nodes_by_key:
            errors.append(issue("goto_unknown_target", f"goto target {goto_target!r} is not a node in this graph.",
                                node_key=node["key"]))

    edges: list[dict] = []
    stored_edges: list = []
    used_ports: set[tuple[str, str]] = set()
    for index, raw in enumerate(raw_edges):
        edge = _normalize_edge(raw)
        if edge is None:
            errors.append(issue("invalid_edge", f"graph.edges[{index}] needs string from_node, from_port, to_node "
                                                "(and to_port \"in\")."))
            stored_edges.append(raw)
            continue
        stored_edges.append(edge)
        source, port, target = edge["from_node"], edge["from_port"], edge["to_node"]
        edges.append(edge)
        if source not in nodes_by_key:
            errors.append(issue("edge_unknown_source", f"Edge from unknown node {source!r}.", node_key=source,
                                port=port))
        elif port not in nodes_by_key[source]["ports"]:
            available = ", ".join(nodes_by_key[source]["ports"]) or "none"
            errors.append(issue("edge_unknown_port", f"Node {source!r} has no output port {port!r} "
                                f"(ports: {available}).", node_key=source, port=port))
        if target not in nodes_by_key:
            errors.append(issue("edge_unknown_target", f"Edge to unknown node {target!r}.", node_key=source,
                                port=port))
        if edge["to_port"] != TARGET_PORT:
            errors.append(issue("edge_invalid_target_port", f"Edges enter a node through \"in\", not "
                                f"{edge['to_port']!r}.", node_key=source, port=port))
        if (source, port) in used_ports:
            errors.append(issue("duplicate_edge_port", f"Output port {port!r} of {source!r} has more than one edge.",
                                node_key=source, port=port))
        used_ports.add((source, port))

    root_ok = False
    if root is None or root == "":
        errors.append(issue("root_missing", "root_node_key is required: the node every run starts at."))
        root = None
    elif not isinstance(root, str) or root not in nodes_by_key:
        errors.append(issue("root_unknown", f"root_node_key {root!r} is not a node in this graph."))
    elif not registry.may_be_root(nodes_by_key[root]["kind"]):
        errors.append(issue("root_invalid_kind", f"A run cannot start at a {nodes_by_key[root]['kind']} node.",
                            node_key=root))
        root_ok = True  # still meaningful for reachability
    else:
        root_ok = True

    successors = _successors(nodes_by_key, edges)
    errors += _cycle_errors(nodes, nodes_by_key, successors)
    if root_ok:
        reachable = _reachable(root, successors)
        for node in nodes:
            if node["key"] not in reachable:
                warnings.append(issue("unreachable_node", f"Node {node['key']!r} cannot be reached from the root.",
                                      node_key=node["key"]))

    normalized = {"nodes": stored_nodes, "edges": stored_edges,
                  "root_node_key": root if isinstance(root, str) else None}
    return normalized, errors, warnings
