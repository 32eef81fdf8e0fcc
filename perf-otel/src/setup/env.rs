//! The `OTEL_*` variables: invalid values are errors that name the variable and the fix.

use std::env;
use std::time::Duration;

use opentelemetry_sdk::trace::Sampler;

use super::{Export, OtelConfig, SetupError};

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn get(vars: Lookup<'_>, name: &'static str) -> Option<String> {
    vars(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn invalid(var: &'static str, value: &str, expected: &'static str) -> SetupError {
    SetupError::InvalidEnv {
        var,
        value: value.to_owned(),
        expected,
    }
}

fn parse_bool(vars: Lookup<'_>, name: &'static str) -> Result<bool, SetupError> {
    match get(vars, name) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(invalid(name, &v, "true or false")),
    }
}

fn parse_num<T: std::str::FromStr + PartialOrd + From<u8>>(
    vars: Lookup<'_>,
    name: &'static str,
    default: T,
) -> Result<T, SetupError> {
    match get(vars, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<T>()
            .ok()
            .filter(|n| *n > T::from(0))
            .ok_or_else(|| invalid(name, &v, "a positive integer")),
    }
}

fn parse_sampler(vars: Lookup<'_>) -> Result<Sampler, SetupError> {
    const ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
    let ratio = || -> Result<f64, SetupError> {
        match get(vars, ARG) {
            None => Ok(1.0),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| invalid(ARG, &v, "a ratio between 0.0 and 1.0")),
        }
    };
    let parent = |s: Sampler| Sampler::ParentBased(Box::new(s));
    Ok(match get(vars, "OTEL_TRACES_SAMPLER").as_deref() {
        None | Some("parentbased_always_on") => parent(Sampler::AlwaysOn),
        Some("always_on") => Sampler::AlwaysOn,
        Some("always_off") => Sampler::AlwaysOff,
        Some("traceidratio") => Sampler::TraceIdRatioBased(ratio()?),
        Some("parentbased_always_off") => parent(Sampler::AlwaysOff),
        Some("parentbased_traceidratio") => parent(Sampler::TraceIdRatioBased(ratio()?)),
        Some(other) => {
            return Err(invalid(
                "OTEL_TRACES_SAMPLER",
                other,
                "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
            ));
        }
    })
}

impl OtelConfig {
    /// Reads the `OTEL_*` variables listed in the [module docs](crate::setup).
    ///
    /// # Errors
    ///
    /// [`SetupError::InvalidEnv`] for a value this crate does not accept.
    pub fn from_env() -> Result<Self, SetupError> {
        Self::from_vars(|name| env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), but exports only when an OTLP endpoint is configured
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, non-empty): without
    /// one the transport is [`Export::None`] and the service runs the same, creating and
    /// propagating trace context without trying to reach a collector that is not there.
    ///
    /// ```
    /// use perf_otel::setup::{Export, OtelConfig};
    ///
    /// let none = |_: &str| None;
    /// assert_eq!(OtelConfig::from_vars_if_endpoint(none).unwrap().configured_export(), Export::None);
    /// let set = |name: &str| {
    ///     (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://127.0.0.1:4318".to_owned())
    /// };
    /// assert_eq!(
    ///     OtelConfig::from_vars_if_endpoint(set).unwrap().configured_export(),
    ///     Export::HttpProtobuf
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// [`SetupError::InvalidEnv`] for a value this crate does not accept.
    pub fn from_env_if_endpoint() -> Result<Self, SetupError> {
        Self::from_vars_if_endpoint(|name| env::var(name).ok())
    }

    /// [`from_env_if_endpoint`](Self::from_env_if_endpoint) with the variables read through
    /// `vars`.
    ///
    /// # Errors
    ///
    /// [`SetupError::InvalidEnv`] for a value this crate does not accept.
    pub fn from_vars_if_endpoint(
        vars: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SetupError> {
        let endpoint = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|name| vars(name).is_some_and(|v| !v.trim().is_empty()));
        let config = Self::from_vars(vars)?;
        Ok(if endpoint {
            config
        } else {
            config.export(Export::None)
        })
    }

    /// Like [`from_env`](Self::from_env) with the variables read through `vars` (for tests and
    /// configuration files). The exporter itself still reads `OTEL_EXPORTER_OTLP_*` (endpoint,
    /// headers, timeout, compression) from the process environment.
    ///
    /// ```
    /// use perf_otel::setup::{Export, OtelConfig};
    ///
    /// let vars = |name: &str| (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "grpc".to_owned());
    /// assert_eq!(OtelConfig::from_vars(vars).unwrap().configured_export(), Export::Grpc);
    /// let bad = |name: &str| (name == "OTEL_TRACES_SAMPLER").then(|| "sometimes".to_owned());
    /// assert!(OtelConfig::from_vars(bad).unwrap_err().to_string().contains("OTEL_TRACES_SAMPLER"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`SetupError::InvalidEnv`] for a value this crate does not accept.
    pub fn from_vars(vars: impl Fn(&str) -> Option<String>) -> Result<Self, SetupError> {
        let vars: Lookup<'_> = &vars;
        let disabled = parse_bool(vars, "OTEL_SDK_DISABLED")?;
        let exporter = match get(vars, "OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => true,
            Some("none") => false,
            Some(v) => return Err(invalid("OTEL_TRACES_EXPORTER", v, "otlp or none")),
        };
        let proto_var = if get(vars, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").is_some() {
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
        } else {
            "OTEL_EXPORTER_OTLP_PROTOCOL"
        };
        let protocol = match get(vars, proto_var).as_deref() {
            None | Some("http/protobuf") => Export::HttpProtobuf,
            Some("grpc") => Export::Grpc,
            Some(v) => return Err(invalid(proto_var, v, "grpc or http/protobuf")),
        };
        let export = if disabled || !exporter {
            Export::None
        } else {
            protocol
        };
        let (mut trace_context, mut baggage) = (true, true);
        if let Some(list) = get(vars, "OTEL_PROPAGATORS") {
            (trace_context, baggage) = (false, false);
            for p in list.split(',').map(str::trim) {
                match p {
                    "tracecontext" => trace_context = true,
                    "baggage" => baggage = true,
                    "none" => {}
                    _ => {
                        return Err(invalid(
                            "OTEL_PROPAGATORS",
                            &list,
                            "a comma-separated list of tracecontext, baggage, none",
                        ));
                    }
                }
            }
        }
        Ok(Self {
            export,
            sampler: parse_sampler(vars)?,
            max_queue_size: parse_num(vars, "OTEL_BSP_MAX_QUEUE_SIZE", 2048)?,
            max_export_batch_size: parse_num(vars, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)?,
            scheduled_delay: Duration::from_millis(parse_num(
                vars,
                "OTEL_BSP_SCHEDULE_DELAY",
                5000,
            )?),
            service_name: None,
            shutdown_timeout: Duration::from_secs(5),
            trace_context,
            baggage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn env_selects_transport_and_switches_export_off() {
        assert_eq!(
            OtelConfig::from_vars(vars(&[]))
                .unwrap()
                .configured_export(),
            Export::HttpProtobuf
        );
        let grpc = [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")];
        assert_eq!(
            OtelConfig::from_vars(vars(&grpc))
                .unwrap()
                .configured_export(),
            Export::Grpc
        );
        let traces_wins = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ];
        assert_eq!(
            OtelConfig::from_vars(vars(&traces_wins))
                .unwrap()
                .configured_export(),
            Export::HttpProtobuf
        );
        let none = [
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ];
        assert_eq!(
            OtelConfig::from_vars(vars(&none))
                .unwrap()
                .configured_export(),
            Export::None
        );
        let disabled = [("OTEL_SDK_DISABLED", "TRUE")];
        assert_eq!(
            OtelConfig::from_vars(vars(&disabled))
                .unwrap()
                .configured_export(),
            Export::None
        );
    }

    #[test]
    fn env_errors_name_the_variable_and_the_fix() {
        for (bad, needle) in [
            (
                &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")][..],
                "expected grpc or http/protobuf",
            ),
            (
                &[("OTEL_TRACES_EXPORTER", "zipkin")][..],
                "OTEL_TRACES_EXPORTER",
            ),
            (&[("OTEL_SDK_DISABLED", "yes")][..], "true or false"),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
                ][..],
                "between 0.0 and 1.0",
            ),
            (&[("OTEL_BSP_MAX_QUEUE_SIZE", "0")][..], "positive integer"),
        ] {
            let err = OtelConfig::from_vars(move |n| {
                bad.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| (*v).to_owned())
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn env_sampler_is_parent_based_ratio() {
        let v = [
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
        ];
        let c = OtelConfig::from_vars(vars(&v)).unwrap();
        assert_eq!(
            format!("{:?}", c.sampler),
            format!(
                "{:?}",
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.01)))
            )
        );
    }
}
