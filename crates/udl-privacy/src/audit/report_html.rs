//! The compliance reports as pages a privacy officer would hand an auditor: the summary first
//! (period, totals by outcome, actor, role and purpose, break-glass accesses and refusals
//! listed at the top), a chart of accesses over time drawn as inline SVG (no script, no
//! external asset: the page works offline and prints), readable times and short ids, then the
//! full table. Each figure carries a `data-metric` attribute so tests can read it back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};

use super::report::{Accounting, DayCount, Disclosure, Summary};

/// `text` safe to place in HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `7 Dec 2026, 16:05:12 UTC`.
fn when(t: DateTime<Utc>) -> String {
    t.format("%-d %b %Y, %H:%M:%S UTC").to_string()
}

fn period(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> String {
    let day = |t: DateTime<Utc>| t.format("%-d %b %Y %H:%M UTC").to_string();
    match (from, to) {
        (None, None) => "all recorded accesses".to_owned(),
        (Some(f), None) => format!("from {} until now", day(f)),
        (None, Some(t)) => format!("everything before {}", day(t)),
        (Some(f), Some(t)) => format!("{} – {}", day(f), day(t)),
    }
}

/// A UUID shortened to its first 8 characters, the whole in a tooltip; any other id as it is.
fn short_id(id: &str) -> String {
    if uuid::Uuid::try_parse(id).is_err() {
        return escape(id);
    }
    let short: String = id.chars().take(8).collect();
    format!(
        "<span class=\"id\" title=\"{}\">{}…</span>",
        escape(id),
        escape(&short)
    )
}

/// The names or ids a log column holds as a JSON array, as readable text.
fn listed(value: &serde_json::Value, ids: bool) -> String {
    let items: Vec<String> = match value.as_array() {
        Some(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect(),
        None => return String::new(),
    };
    let shown: Vec<String> = items
        .iter()
        .take(3)
        .map(|i| if ids { short_id(i) } else { escape(i) })
        .collect();
    let more = items.len().saturating_sub(3);
    let mut text = shown.join(", ");
    if more > 0 {
        let _ = write!(text, " and {more} more");
    }
    text
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1f2933;background:#f5f7fa}\
main{max-width:1100px;margin:0 auto;padding:2rem}\
h1{font-size:1.6rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .75rem}\
.sub{color:#52606d;margin:0}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.75rem;margin-top:1.5rem}\
.card{background:#fff;border-radius:8px;padding:1rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}\
.card .n{font-size:1.8rem;font-weight:600}.card .l{color:#52606d;font-size:.85rem}\
.card.alert{border-left:4px solid #c53030}.card.ok{border-left:4px solid #2f855a}\
.panel{background:#fff;border-radius:8px;padding:1rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:.75rem}\
table{border-collapse:collapse;width:100%;font-size:.9rem}\
th{text-align:left;color:#52606d;font-weight:600;border-bottom:2px solid #e4e7eb;padding:.4rem .5rem}\
td{border-bottom:1px solid #e4e7eb;padding:.4rem .5rem;vertical-align:top}td.t{white-space:nowrap}\
tr.flag td{background:#fff5f5}.tag{display:inline-block;border-radius:4px;padding:0 .4rem;font-size:.8rem}\
.tag.allowed{background:#c6f6d5;color:#22543d}.tag.denied,.tag.error{background:#fed7d7;color:#822727}\
.tag.glass{background:#feebc8;color:#7b341e}.bar{background:#bcccdc;height:.6rem;border-radius:3px}\
.id{font-family:ui-monospace,monospace;cursor:help}.none{color:#52606d}\
@media print{body{background:#fff}.card,.panel{box-shadow:none;border:1px solid #e4e7eb}}";

/// The page around `body`.
fn page(title: &str, subtitle: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\n<body><main>\n\
         <h1>{title}</h1>\n<p class=\"sub\">{subtitle}</p>\n{body}</main></body></html>\n",
        title = escape(title),
    )
}

/// One summary card.
fn card(metric: &str, label: &str, n: i64, class: &str) -> String {
    format!(
        "<div class=\"card {class}\"><div class=\"n\" data-metric=\"{metric}\">{n}</div>\
         <div class=\"l\">{}</div></div>",
        escape(label)
    )
}

/// The totals a report opens with.
struct Totals {
    total: i64,
    allowed: i64,
    denied: i64,
    errors: i64,
    break_glass: i64,
    actors: i64,
}

impl Totals {
    /// One card per total; denials and break-glass accesses stand out when there are any.
    fn cards(&self) -> String {
        let alert = |n: i64| if n > 0 { "alert" } else { "" };
        [
            card("total", "accesses", self.total, ""),
            card("allowed", "allowed", self.allowed, "ok"),
            card("denied", "denied", self.denied, alert(self.denied)),
            card("error", "failed", self.errors, ""),
            card(
                "break_glass",
                "break-glass",
                self.break_glass,
                alert(self.break_glass),
            ),
            card("actors", "people and services", self.actors, ""),
        ]
        .concat()
    }
}

fn outcome_tag(outcome: &str) -> String {
    format!("<span class=\"tag {0}\">{0}</span>", escape(outcome))
}

/// A small table of counts by `what`, largest first, with a bar each.
fn breakdown(title: &str, metric: &str, counts: &BTreeMap<String, i64>) -> String {
    let max = counts.values().copied().max().unwrap_or(1).max(1);
    let mut sorted: Vec<(&String, &i64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut html = format!(
        "<div class=\"panel\"><table><tr><th>{}</th><th>accesses</th><th></th></tr>",
        escape(title)
    );
    for (key, n) in sorted {
        let width = n * 100 / max;
        let _ = write!(
            html,
            "<tr><td>{}</td><td data-metric=\"{metric}:{}\">{n}</td>\
             <td style=\"width:40%\"><div class=\"bar\" style=\"width:{width}%\"></div></td></tr>",
            short_id(key),
            escape(key)
        );
    }
    html.push_str("</table></div>");
    html
}

/// Accesses over time: one stacked bar per day (allowed below, refused above), as SVG.
fn chart(days: &[DayCount]) -> String {
    if days.is_empty() {
        return "<p class=\"none\">No accesses in this period.</p>".to_owned();
    }
    let (first, last) = (days[0].day, days[days.len() - 1].day);
    let span = (last - first).num_days().max(0) as usize + 1;
    let by_day: BTreeMap<NaiveDate, &DayCount> = days.iter().map(|d| (d.day, d)).collect();
    let max = days
        .iter()
        .map(|d| d.allowed + d.refused)
        .max()
        .unwrap_or(1)
        .max(1);
    let (width, height, left, bottom) = (960.0_f64, 220.0_f64, 40.0_f64, 30.0_f64);
    let plot = height - bottom - 10.0;
    let slot = (width - left) / span as f64;
    let bar = (slot * 0.7).max(1.0);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {width} {height}\" width=\"100%\" role=\"img\" \
         aria-label=\"Accesses per day\" xmlns=\"http://www.w3.org/2000/svg\">\
         <line x1=\"{left}\" y1=\"{base}\" x2=\"{width}\" y2=\"{base}\" stroke=\"#9aa5b1\"/>\
         <text x=\"{lx}\" y=\"14\" font-size=\"11\" text-anchor=\"end\" fill=\"#52606d\">{max}</text>\
         <text x=\"{lx}\" y=\"{base}\" font-size=\"11\" text-anchor=\"end\" fill=\"#52606d\">0</text>",
        base = height - bottom,
        lx = left - 6.0,
    );
    let label_every = span.div_ceil(10).max(1);
    for i in 0..span {
        let day = first + chrono::Days::new(i as u64);
        let x = left + i as f64 * slot + (slot - bar) / 2.0;
        if let Some(d) = by_day.get(&day) {
            let allowed_h = d.allowed as f64 / max as f64 * plot;
            let refused_h = d.refused as f64 / max as f64 * plot;
            let base = height - bottom;
            let _ = write!(
                svg,
                "<g data-day=\"{day}\" data-allowed=\"{a}\" data-refused=\"{r}\">\
                 <title>{label}: {a} allowed, {r} refused</title>\
                 <rect x=\"{x:.1}\" y=\"{ya:.1}\" width=\"{bar:.1}\" height=\"{allowed_h:.1}\" fill=\"#3182ce\"/>\
                 <rect x=\"{x:.1}\" y=\"{yr:.1}\" width=\"{bar:.1}\" height=\"{refused_h:.1}\" fill=\"#e53e3e\"/></g>",
                a = d.allowed,
                r = d.refused,
                label = day.format("%-d %b %Y"),
                ya = base - allowed_h,
                yr = base - allowed_h - refused_h,
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#52606d\">{}</text>",
                x + bar / 2.0,
                height - 10.0,
                day.format("%-d %b")
            );
        }
    }
    svg.push_str(
        "</svg><p class=\"sub\"><span style=\"color:#3182ce\">■</span> allowed \
                  <span style=\"color:#e53e3e\">■</span> denied or failed</p>",
    );
    format!("<div class=\"panel\">{svg}</div>")
}

fn count_by<'a>(items: impl Iterator<Item = (&'a str, i64)>) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for (key, n) in items {
        *counts.entry(key.to_owned()).or_insert(0) += n;
    }
    counts
}

/// The rows of a disclosure table.
fn disclosure_rows(disclosures: &[&Disclosure]) -> String {
    let mut html = String::from(
        "<table><tr><th>when</th><th>who</th><th>role</th><th>purpose</th><th>what</th>\
         <th>records</th><th>fields</th><th>outcome</th></tr>",
    );
    for d in disclosures {
        let glass = if d.break_glass {
            " <span class=\"tag glass\">break-glass</span>"
        } else {
            ""
        };
        let flagged = d.break_glass || d.outcome != "allowed";
        let _ = write!(
            html,
            "<tr{}><td class=\"t\">{}</td><td>{}</td><td>{}</td><td>{}{glass}</td><td>{} ({})</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            if flagged { " class=\"flag\"" } else { "" },
            when(d.occurred_at),
            short_id(&d.actor_id),
            escape(&d.actor_role),
            escape(&d.purpose),
            escape(&d.entity),
            escape(&d.operation),
            listed(&d.record_ids, true),
            listed(&d.fields, false),
            outcome_tag(&d.outcome),
        );
    }
    html.push_str("</table>");
    html
}

impl Accounting {
    /// A readable HTML page: summary, chart, attention list, then every access.
    pub fn to_html(&self) -> String {
        let all: Vec<&Disclosure> = self.disclosures.iter().collect();
        let count =
            |pred: &dyn Fn(&Disclosure) -> bool| all.iter().filter(|d| pred(d)).count() as i64;
        let actors = count_by(all.iter().map(|d| (d.actor_id.as_str(), 1)));
        let totals = Totals {
            total: all.len() as i64,
            allowed: count(&|d| d.outcome == "allowed"),
            denied: count(&|d| d.outcome == "denied"),
            errors: count(&|d| d.outcome == "error"),
            break_glass: count(&|d| d.break_glass),
            actors: actors.len() as i64,
        };
        let mut body = format!("<section class=\"cards\">{}", totals.cards());
        body.push_str("</section>\n<h2>Needs attention: break-glass accesses and refusals</h2>");
        let attention: Vec<&Disclosure> = all
            .iter()
            .copied()
            .filter(|d| d.break_glass || d.outcome != "allowed")
            .collect();
        if attention.is_empty() {
            body.push_str("<p class=\"none\">None in this period.</p>");
        } else {
            let _ = write!(
                body,
                "<div class=\"panel\">{}</div>",
                disclosure_rows(&attention)
            );
        }
        body.push_str("\n<h2>Accesses over time</h2>");
        let mut days: BTreeMap<NaiveDate, DayCount> = BTreeMap::new();
        for d in &all {
            let day = d.occurred_at.date_naive();
            let entry = days.entry(day).or_insert(DayCount {
                day,
                allowed: 0,
                refused: 0,
            });
            if d.outcome == "allowed" {
                entry.allowed += 1;
            } else {
                entry.refused += 1;
            }
        }
        body.push_str(&chart(&days.into_values().collect::<Vec<_>>()));
        body.push_str("\n<h2>Who, in which role, why</h2><div class=\"grid\">");
        body.push_str(&breakdown("actor", "actor", &actors));
        body.push_str(&breakdown(
            "role",
            "role",
            &count_by(all.iter().map(|d| (d.actor_role.as_str(), 1))),
        ));
        body.push_str(&breakdown(
            "purpose",
            "purpose",
            &count_by(all.iter().map(|d| (d.purpose.as_str(), 1))),
        ));
        body.push_str(&breakdown(
            "what",
            "entity",
            &count_by(all.iter().map(|d| (d.entity.as_str(), 1))),
        ));
        body.push_str("</div>\n<h2>Every access</h2>");
        let _ = write!(body, "<div class=\"panel\">{}</div>", disclosure_rows(&all));
        page(
            "Accounting of disclosures",
            &format!(
                "Patient {} · {} · generated {}",
                escape(&self.patient_id),
                escape(&period(self.from, self.to)),
                when(Utc::now())
            ),
            &body,
        )
    }
}

impl Summary {
    /// A readable HTML page: totals, chart, break-glass and refusals, breakdowns, every row.
    pub fn to_html(&self) -> String {
        let sum = |pred: &dyn Fn(&super::report::SummaryRow) -> bool| -> i64 {
            self.rows
                .iter()
                .filter(|r| pred(r))
                .map(|r| r.accesses)
                .sum()
        };
        let actors = count_by(self.rows.iter().map(|r| (r.actor_id.as_str(), r.accesses)));
        let totals = Totals {
            total: self.total,
            allowed: sum(&|r| r.outcome == "allowed"),
            denied: sum(&|r| r.outcome == "denied"),
            errors: sum(&|r| r.outcome == "error"),
            break_glass: self.break_glass,
            actors: actors.len() as i64,
        };
        let mut body = format!("<section class=\"cards\">{}", totals.cards());
        body.push_str("</section>");
        let behind: i64 = self.journals.iter().map(|j| j.behind).sum();
        if let Some(oldest) = self.journals.iter().map(|j| j.last_shipped_at).min() {
            let _ = write!(
                body,
                "<p class=\"sub\">{} local audit journals; {behind} entries were not yet in the log \
                 when they last shipped (the least recent at {}).</p>",
                self.journals.len(),
                when(oldest)
            );
        }
        body.push_str("\n<h2>Needs attention: break-glass accesses and refusals</h2>");
        let attention: Vec<&super::report::SummaryRow> = self
            .rows
            .iter()
            .filter(|r| r.purpose == "emergency" || r.outcome != "allowed")
            .collect();
        if attention.is_empty() {
            body.push_str("<p class=\"none\">None in this period.</p>");
        } else {
            let _ = write!(
                body,
                "<div class=\"panel\">{}</div>",
                summary_rows(&attention)
            );
        }
        body.push_str("\n<h2>Accesses over time</h2>");
        body.push_str(&chart(&self.by_day));
        body.push_str("\n<h2>Who, in which role, why</h2><div class=\"grid\">");
        body.push_str(&breakdown("actor", "actor", &actors));
        let roles = count_by(
            self.rows
                .iter()
                .map(|r| (r.actor_role.as_str(), r.accesses)),
        );
        body.push_str(&breakdown("role", "role", &roles));
        let purposes = count_by(self.rows.iter().map(|r| (r.purpose.as_str(), r.accesses)));
        body.push_str(&breakdown("purpose", "purpose", &purposes));
        body.push_str("</div>\n<h2>Every actor, purpose and outcome</h2>");
        let all: Vec<&super::report::SummaryRow> = self.rows.iter().collect();
        let _ = write!(body, "<div class=\"panel\">{}</div>", summary_rows(&all));
        page(
            "PHI access summary",
            &format!(
                "{} · generated {}",
                escape(&period(self.from, self.to)),
                when(Utc::now())
            ),
            &body,
        )
    }
}

fn summary_rows(rows: &[&super::report::SummaryRow]) -> String {
    let mut html = String::from(
        "<table><tr><th>who</th><th>role</th><th>purpose</th><th>outcome</th>\
         <th>accesses</th><th>patients</th></tr>",
    );
    for r in rows {
        let glass = r.purpose == "emergency";
        let _ = write!(
            html,
            "<tr{}><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if glass || r.outcome != "allowed" {
                " class=\"flag\""
            } else {
                ""
            },
            short_id(&r.actor_id),
            escape(&r.actor_role),
            escape(&r.purpose),
            if glass {
                " <span class=\"tag glass\">break-glass</span>"
            } else {
                ""
            },
            outcome_tag(&r.outcome),
            r.accesses,
            r.patients
        );
    }
    html.push_str("</table>");
    html
}

#[cfg(test)]
mod tests {
    use super::super::report::SummaryRow;
    use super::*;

    #[test]
    fn html_escapes_what_the_log_holds() {
        let summary = Summary {
            from: None,
            to: None,
            total: 1,
            break_glass: 0,
            rows: vec![SummaryRow {
                actor_id: "<script>alert('x')</script>&".into(),
                actor_role: "clinician".into(),
                purpose: "treatment".into(),
                outcome: "allowed".into(),
                accesses: 1,
                patients: 1,
            }],
            by_day: Vec::new(),
            journals: Vec::new(),
        };
        let html = summary.to_html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn ids_are_shortened_with_the_whole_in_a_tooltip() {
        let id = "6f1c2a8e-0000-4000-8000-00000000fa4e";
        let html = short_id(id);
        assert!(
            html.contains(">6f1c2a8e…<") && html.contains(&format!("title=\"{id}\"")),
            "{html}"
        );
        let listed = listed(&serde_json::json!(["a", "b", "c", "d", "e"]), false);
        assert_eq!(listed, "a, b, c and 2 more");
    }
}
