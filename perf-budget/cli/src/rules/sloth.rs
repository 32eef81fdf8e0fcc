//! A Sloth `prometheus/v1` spec, for teams that already run Sloth.

use perf_budget::BudgetPolicy;
use serde::Serialize;

use super::{Labels, Options, slos};

/// A Sloth `prometheus/v1` spec.
#[derive(Serialize)]
struct SlothSpec {
    version: &'static str,
    service: String,
    slos: Vec<SlothSlo>,
}

#[derive(Serialize)]
struct SlothSlo {
    name: String,
    objective: f64,
    description: String,
    sli: SlothSli,
    alerting: SlothAlerting,
}

#[derive(Serialize)]
struct SlothSli {
    events: SlothEvents,
}

#[derive(Serialize)]
struct SlothEvents {
    error_query: String,
    total_query: String,
}

#[derive(Serialize)]
struct SlothAlerting {
    name: &'static str,
    page_alert: SlothAlert,
    ticket_alert: SlothAlert,
}

#[derive(Serialize)]
struct SlothAlert {
    labels: Labels,
}

/// A Sloth `prometheus/v1` spec, for teams that already run Sloth.
pub(crate) fn sloth(policy: &BudgetPolicy, opts: &Options) -> String {
    let severity = |s: &str| SlothAlert {
        labels: Labels::from([("severity".to_owned(), s.to_owned())]),
    };
    let slos = slos(policy, &opts.service)
        .into_iter()
        .map(|slo| SlothSlo {
            objective: slo.objective * 100.0,
            description: format!("{}: {}", slo.budget, slo.expr),
            sli: SlothSli {
                events: SlothEvents {
                    error_query: format!("sum(rate({}[{{{{.window}}}}]))", slo.error_metric),
                    total_query: format!("sum(rate({}[{{{{.window}}}}]))", slo.total_metric),
                },
            },
            alerting: SlothAlerting {
                name: "PerfBudget",
                page_alert: severity(&opts.page_severity),
                ticket_alert: severity(&opts.ticket_severity),
            },
            name: slo.slo,
        })
        .collect();
    let spec = SlothSpec {
        version: "prometheus/v1",
        service: opts.service.clone(),
        slos,
    };
    serde_norway::to_string(&spec).unwrap_or_default()
}
