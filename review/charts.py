"""Small SVG charts drawn on the server: no script, nothing fetched, and every label goes
through markupsafe.escape, so a platform or system name cannot inject markup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563")
W, H = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 40


def _frame(title: str, body: list[str], legend: Sequence[str]) -> Markup:
    items = []
    for i, name in enumerate(legend):
        x = LEFT + i * 120
        items.append(f'<rect x="{x}" y="{H - 14}" width="10" height="10" '
                     f'fill="{COLOURS[i % len(COLOURS)]}"/>'
                     f'<text x="{x + 14}" y="{H - 5}" font-size="11">{escape(name)}</text>')
    return Markup(
        f'<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f'<title>{escape(title)}</title>{"".join(body)}{"".join(items)}</svg>')


def _axes(top: float, bottom: float, ticks: Sequence[str]) -> list[str]:
    plot_w = W - LEFT - RIGHT
    parts = [f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" '
             'stroke="#999"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#999"/>',
             f'<text x="{LEFT - 4}" y="{TOP + 8}" font-size="10" text-anchor="end">'
             f'{_num(top)}</text>',
             f'<text x="{LEFT - 4}" y="{H - BOTTOM}" font-size="10" text-anchor="end">'
             f'{_num(bottom)}</text>']
    if ticks:
        step = max(1, len(ticks) // 6)
        for i in range(0, len(ticks), step):
            x = LEFT + (i + 0.5) * plot_w / len(ticks)
            parts.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" font-size="10" '
                         f'text-anchor="middle">{escape(ticks[i])}</text>')
    return parts


def _num(value: float) -> str:
    # Whole numbers past 1000 (latencies in ms) as "3060", not "3.06e+03".
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def line_chart(title: str, series: Mapping[str, Mapping[str, float]], *,
               y_min: float | None = None, y_max: float | None = None) -> Markup:
    """One line per series over the union of their x labels (dates, sorted)."""
    xs = sorted({x for points in series.values() for x in points})
    values = [v for points in series.values() for v in points.values()]
    if not xs:
        return _frame(title, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">'
                              'no data</text>'], [])
    low = min(values) if y_min is None else y_min
    high = max(values) if y_max is None else y_max
    if high <= low:
        high = low + 1
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    body = _axes(high, low, xs)
    for i, (name, points) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        coords = [(LEFT + (xs.index(x) + 0.5) * plot_w / len(xs),
                   TOP + plot_h * (1 - (v - low) / (high - low)))
                  for x, v in sorted(points.items())]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                        f'points="{path}"/>')
        for (x, y), (label, v) in zip(coords, sorted(points.items()), strict=True):
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                        f'<title>{escape(name)} {escape(label)}: {_num(v)}</title></circle>')
    return _frame(title, body, list(series))


def bar_chart(title: str, groups: Sequence[str],
              series: Mapping[str, Mapping[str, float]]) -> Markup:
    """Grouped bars: for each group (x label) one bar per series."""
    values = [series[name].get(g, 0.0) for name in series for g in groups]
    if not groups or not series:
        return _frame(title, [f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">'
                              'no data</text>'], [])
    high = max(values) or 1.0
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    body = _axes(high, 0.0, list(groups))
    slot = plot_w / len(groups)
    bar = slot * 0.8 / len(series)
    for i, name in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        for j, group in enumerate(groups):
            v = series[name].get(group, 0.0)
            height = plot_h * v / high
            x = LEFT + j * slot + slot * 0.1 + i * bar
            body.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - height:.1f}" width="{bar:.1f}" '
                        f'height="{height:.1f}" fill="{colour}"><title>{escape(name)} '
                        f'{escape(group)}: {_num(v)}</title></rect>')
    return _frame(title, body, list(series))
