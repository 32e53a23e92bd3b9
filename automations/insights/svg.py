"""The admin's pictures, drawn on the server as inline SVG (no JavaScript, nothing fetched: works offline).

- `graph_svg`: an automation's graph top to bottom in layers from the root (breadth first; nodes the
  root cannot reach in a last row), edges labelled with their ports (a `goto` as a dashed edge), the
  root marked, invalid nodes red; optionally per-node figures (visits, drop-off) or one run's path
  with its current node.
- `runs_chart_svg`: runs started per bucket, stacked by what became of them.
- `exit_reasons_svg`: finished runs by exit reason, horizontal bars.

Every picture stays within MAX_WIDTH pixels. Elements carry classes and data attributes (node keys,
counts) so a browser test can check what was drawn. All text from the graph is escaped.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

MAX_WIDTH = 1360
NODE_W, NODE_H = 184, 66
COL_PITCH, ROW_PITCH = 220, 138
MARGIN = 24
BACK_EDGE_ROOM = 90  # to the right of the widest row, for edges looping back up
MAX_PER_ROW = (MAX_WIDTH - 2 * MARGIN - BACK_EDGE_ROOM) // COL_PITCH

COLORS = {"completed": "#2e7d32", "exited": "#ef6c00", "failed": "#c62828", "live": "#1e88e5"}
STYLE = """
.relay-svg text { font: 12px -apple-system, "Segoe UI", Roboto, sans-serif; fill: #212121; }
.relay-svg .node rect.box { fill: #fff; stroke: #90a4ae; stroke-width: 1.5; }
.relay-svg .node.root rect.box { stroke: #37474f; stroke-width: 3; }
.relay-svg .node.invalid rect.box { fill: #ffebee; stroke: #c62828; }
.relay-svg .node.on-path rect.box { fill: #e3f2fd; stroke: #1565c0; stroke-width: 2.5; }
.relay-svg .node.current rect.box { stroke: #ff6f00; stroke-width: 4; }
.relay-svg .node .key { font-weight: 600; }
.relay-svg .node .kind, .relay-svg .muted { fill: #607d8b; font-size: 11px; }
.relay-svg .node .drop { fill: #c62828; }
.relay-svg .edge path { fill: none; stroke: #90a4ae; stroke-width: 1.5; }
.relay-svg .edge.goto path { stroke-dasharray: 5 4; }
.relay-svg .edge.on-path path { stroke: #1565c0; stroke-width: 3; }
.relay-svg .edge rect { fill: #fff; opacity: .9; }
.relay-svg .edge text { font-size: 11px; fill: #455a64; }
.relay-svg .badge { fill: #37474f; } .relay-svg .badge-text { fill: #fff; font-size: 10px; font-weight: 600; }
.relay-svg .axis { stroke: #b0bec5; } .relay-svg .grid { stroke: #eceff1; }
"""


def _text(x, y, value, cls="", anchor="start", extra="") -> str:
    cls_attr = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}"{cls_attr}{extra}>{escape(value)}</text>'


def _short(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _svg(width: int, height: int, body: list[str], label: str, cls: str) -> SafeString:
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="relay-svg {cls}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'style="max-width:100%;height:auto;background:#fafafa;border:1px solid #eceff1">'
        f"<title>{escape(label)}</title><style>{STYLE}</style>{''.join(body)}</svg>")


# ------------------------------------------------------------------------------------------------ graph

@dataclass
class GraphPicture:
    """What to draw on top of the graph: per-node figures, or one run's path."""

    node_stats: dict[str, dict] = field(default_factory=dict)  # key → {"visits", "dropoff"}
    path_nodes: set[str] = field(default_factory=set)
    path_edges: set[tuple[str, str]] = field(default_factory=set)  # (from_node, port) taken
    current_node: str | None = None
    invalid_nodes: set[str] = field(default_factory=set)


def _edges(graph: dict, keys: set[str]) -> list[tuple[str, str, str, bool]]:
    """(from, port, to, is_goto) for edges between existing nodes, gotos included."""
    edges = []
    for edge in graph.get("edges") or []:
        if isinstance(edge, dict) and edge.get("from_node") in keys and edge.get("to_node") in keys:
            edges.append((edge["from_node"], str(edge.get("from_port") or ""), edge["to_node"], False))
    for node in graph.get("nodes") or []:
        target = (node.get("config") or {}).get("target_node_key") if node.get("kind") == "goto" else None
        if isinstance(target, str) and target in keys:
            edges.append((node["key"], "goto", target, True))
    return edges


def _layers(keys: list[str], root: str | None, edges) -> dict[str, int]:
    children = defaultdict(list)
    for source, _port, target, _goto in edges:
        children[source].append(target)
    layer = {}
    if root in keys:
        layer[root] = 0
        queue = deque([root])
        while queue:
            current = queue.popleft()
            for child in children[current]:
                if child not in layer:
                    layer[child] = layer[current] + 1
                    queue.append(child)
    last = max(layer.values(), default=-1) + 1
    for key in keys:
        layer.setdefault(key, last)  # unreachable from the root
    return layer


def _positions(keys: list[str], layer: dict[str, int], edges) -> tuple[dict[str, tuple[float, float]], int, int]:
    """Rows of at most MAX_PER_ROW nodes, layer by layer; within a layer ordered by where the parents
    sit (fewer crossings). Returns top-left corners, the width and the height."""
    parents = defaultdict(list)
    for source, _port, target, _goto in edges:
        parents[target].append(source)
    positions: dict[str, tuple[float, float]] = {}
    row = 0
    widest = 1
    for depth in sorted(set(layer.values())):
        members = [key for key in keys if layer[key] == depth]
        members.sort(key=lambda key: (sum(positions[p][0] for p in parents[key] if p in positions)
                                      / max(1, sum(1 for p in parents[key] if p in positions)), keys.index(key)))
        for start in range(0, len(members), MAX_PER_ROW):
            chunk = members[start:start + MAX_PER_ROW]
            widest = max(widest, len(chunk))
            for index, key in enumerate(chunk):
                positions[key] = (index - (len(chunk) - 1) / 2, row)  # centred; shifted below
            row += 1
    width = max(2 * MARGIN + widest * COL_PITCH, 420)
    centre = width / 2
    width += BACK_EDGE_ROOM
    placed = {key: (centre + column * COL_PITCH - NODE_W / 2, MARGIN + 18 + r * ROW_PITCH)
              for key, (column, r) in positions.items()}
    return placed, width, int(MARGIN + 18 + row * ROW_PITCH)


def graph_svg(graph: dict, picture: GraphPicture | None = None, *, label: str = "Automation graph") -> SafeString:
    picture = picture or GraphPicture()
    nodes = [n for n in graph.get("nodes") or [] if isinstance(n, dict) and isinstance(n.get("key"), str)]
    if not nodes:
        return _svg(420, 60, [_text(20, 35, "No nodes yet.", "muted")], label, "relay-graph")
    keys = [n["key"] for n in nodes]
    root = graph.get("root_node_key")
    edges = _edges(graph, set(keys))
    placed, width, height = _positions(keys, _layers(keys, root, edges), edges)
    body = ['<defs><marker id="relay-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#78909c"/></marker>'
            '<marker id="relay-arrow-path" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#1565c0"/></marker></defs>']
    out_ports = defaultdict(list)
    for source, port, _target, _goto in edges:
        out_ports[source].append(port)
    labels = []
    for source, port, target, is_goto in edges:
        body_part, label_part = _edge(source, port, target, is_goto, placed, out_ports, picture)
        body.append(body_part)
        labels.append(label_part)
    body += labels  # labels over every line
    for node in nodes:
        body.append(_node(node, placed[node["key"]], root, picture))
    return _svg(width, height, body, label, "relay-graph")


def _edge(source, port, target, is_goto, placed, out_ports, picture) -> tuple[str, str]:
    sx, sy = placed[source]
    tx, ty = placed[target]
    siblings = out_ports[source]
    offset = (siblings.index(port) - (len(siblings) - 1) / 2) * min(36, (NODE_W - 24) / max(1, len(siblings)))
    x1, y1 = sx + NODE_W / 2 + offset, sy + NODE_H
    if ty > sy:  # downwards
        x2, y2 = tx + NODE_W / 2, ty
        bend = (y2 - y1) / 2
        d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + bend:.1f} {x2:.1f},{y2 - bend:.1f} {x2:.1f},{y2 - 2:.1f}"
        lx, ly = (x1 + x2) / 2, (y1 + y2) / 2
    elif ty == sy:  # across the same row: an arc below it
        x2, y2 = tx + NODE_W / 2 + (8 if tx < sx else -8), ty + NODE_H
        depth = y1 + 48
        d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{depth:.1f} {x2:.1f},{depth:.1f} {x2:.1f},{y2 + 2:.1f}"
        lx, ly = (x1 + x2) / 2, y1 + 36
    else:  # back to an earlier row: loop around the right side (graph_svg leaves room: BACK_EDGE_ROOM)
        x1, y1 = sx + NODE_W, sy + NODE_H / 2 + offset / 3
        x2, y2 = tx + NODE_W, ty + NODE_H / 2
        reach = max(x1, x2) + BACK_EDGE_ROOM - 30
        d = f"M{x1:.1f},{y1:.1f} C{reach:.1f},{y1:.1f} {reach:.1f},{y2:.1f} {x2 + 2:.1f},{y2:.1f}"
        lx, ly = reach - 20, (y1 + y2) / 2
    on_path = (source, port) in picture.path_edges
    classes = "edge" + (" goto" if is_goto else "") + (" on-path" if on_path else "")
    marker = "relay-arrow-path" if on_path else "relay-arrow"
    data = f'data-from="{escape(source)}" data-port="{escape(port)}" data-to="{escape(target)}"'
    text = _short(port, 22)
    box_w = 6.4 * len(text) + 8
    line = (f'<g class="{classes}" {data}><title>{escape(source)} —{escape(port)}→ {escape(target)}</title>'
            f'<path d="{d}" marker-end="url(#{marker})"/></g>')
    label = (f'<g class="{classes} edge-label" {data}><rect x="{lx - box_w / 2:.1f}" y="{ly - 9:.1f}" '
             f'width="{box_w:.1f}" height="15" rx="3"/>{_text(lx, ly + 2, text, anchor="middle")}</g>')
    return line, label


def _node(node: dict, corner, root, picture: GraphPicture) -> str:
    key, kind = node["key"], str(node.get("kind") or "?")
    x, y = corner
    classes = ["node"]
    if key == root:
        classes.append("root")
    if key in picture.invalid_nodes:
        classes.append("invalid")
    if key in picture.path_nodes:
        classes.append("on-path")
    if key == picture.current_node:
        classes.append("current")
    stats = picture.node_stats.get(key)
    data = f'data-node-key="{escape(key)}" data-kind="{escape(kind)}"'
    parts = [f'<g class="{" ".join(classes)}" {data}'
             + (f' data-visits="{stats["visits"]}" data-dropoff="{stats["dropoff"]}"' if stats else "") + ">",
             f"<title>{escape(key)} ({escape(kind)}){' — ' + escape(node.get('title')) if node.get('title') else ''}"
             "</title>",
             f'<rect class="box" x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="8"/>',
             _text(x + 10, y + 20, _short(key, 24), "key"),
             _text(x + 10, y + 36, _short(kind + (f" · {node['title']}" if node.get("title") else ""), 28), "kind")]
    if stats:
        visits, dropoff = stats["visits"], stats["dropoff"]
        share = f" ({round(100 * dropoff / visits)}%)" if visits and dropoff else ""
        parts.append(_text(x + 10, y + 55, f"visits {visits}", "visits"))
        parts.append(_text(x + NODE_W - 10, y + 55, f"drop-off {dropoff}{share}", "drop" if dropoff else "muted",
                           anchor="end"))
    if key == picture.current_node:
        parts.append(_text(x + NODE_W - 10, y + 55, "current", "drop", anchor="end"))
    if key == root:
        parts.append(f'<rect class="badge" x="{x:.1f}" y="{y - 16:.1f}" width="40" height="14" rx="3"/>'
                     + _text(x + 20, y - 5, "ROOT", "badge-text", anchor="middle"))
    if key in picture.invalid_nodes:
        parts.append(f'<rect class="badge" style="fill:#c62828" x="{x + NODE_W - 52:.1f}" y="{y - 16:.1f}" '
                     f'width="52" height="14" rx="3"/>' + _text(x + NODE_W - 26, y - 5, "INVALID", "badge-text",
                                                               anchor="middle"))
    parts.append("</g>")
    return "".join(parts)


# ----------------------------------------------------------------------------------------------- charts

def _nice_max(value: int) -> int:
    if value <= 4:
        return max(value, 1)
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return value


def runs_chart_svg(series: list[dict], bucket: str, *, label: str = "Runs started over time") -> SafeString:
    """Stacked bars: of the runs started in each bucket, how many completed, exited, failed or are live."""
    width, height = 1000, 250
    left, right, top, bottom = 48, 16, 34, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((b["started"] for b in series), default=0))
    body = []
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        body.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        body.append(_text(left - 6, y + 4, f"{peak * fraction:g}", "muted", anchor="end"))
    body.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    slot = plot_w / max(1, len(series))
    bar_w = max(2.0, slot * 0.7)
    every = max(1, round(len(series) / 12))
    for index, entry in enumerate(series):
        x = left + index * slot + (slot - bar_w) / 2
        live = entry["started"] - entry["completed"] - entry["exited"] - entry["failed"]
        stamp = entry["bucket_start"]
        body.append(f'<g class="bar" data-bucket="{escape(stamp)}" data-started="{entry["started"]}">'
                    f"<title>{escape(stamp)}: {entry['started']} started — {entry['completed']} completed, "
                    f"{entry['exited']} exited, {entry['failed']} failed, {live} live</title>")
        y = top + plot_h
        for name, count in (("completed", entry["completed"]), ("exited", entry["exited"]),
                            ("failed", entry["failed"]), ("live", live)):
            if count > 0:
                h = plot_h * count / peak
                y -= h
                body.append(f'<rect class="{name}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                            f'fill="{COLORS[name]}"/>')
        body.append("</g>")
        if index % every == 0:
            tick = stamp[11:13] + "h" if bucket == "hour" else stamp[5:10]
            body.append(_text(x + bar_w / 2, top + plot_h + 16, tick, "muted", anchor="middle"))
    legend_x = left
    for name in ("completed", "exited", "failed", "live"):
        body.append(f'<rect x="{legend_x}" y="10" width="12" height="12" fill="{COLORS[name]}"/>')
        body.append(_text(legend_x + 16, 20, name))
        legend_x += 96
    body.append(_text(width - right, 20, f"{sum(b['started'] for b in series)} runs started", "muted",
                      anchor="end"))
    return _svg(width, height, body, label, "relay-runs-chart")


def exit_reasons_svg(exit_reasons: dict[str, int], *, label: str = "Exit reasons") -> SafeString:
    width = 700
    if not exit_reasons:
        return _svg(width, 50, [_text(16, 30, "No finished runs in this period.", "muted")], label,
                    "relay-exit-chart")
    rows = sorted(exit_reasons.items(), key=lambda item: (-item[1], item[0]))
    left, bar_h, pitch, top = 190, 18, 26, 16
    peak = max(count for _, count in rows)
    body = []
    for index, (reason, count) in enumerate(rows):
        y = top + index * pitch
        w = (width - left - 70) * count / peak
        color = COLORS["completed"] if reason == "completed" else COLORS["exited"]
        body.append(f'<g class="reason" data-reason="{escape(reason)}" data-count="{count}">'
                    + _text(left - 8, y + 13, _short(reason, 28), anchor="end")
                    + f'<rect x="{left}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h}" rx="2" fill="{color}"/>'
                    + _text(left + w + 6, y + 13, str(count), "muted") + "</g>")
    return _svg(width, top * 2 + len(rows) * pitch, body, label, "relay-exit-chart")
