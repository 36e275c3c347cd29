//! Tracing for every service: logs to stdout, spans to OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set, and W3C trace context in and out of NATS headers and outbox rows.
//!
//! A tracer provider is installed even without an exporter, so every span has a trace id and the
//! `traceparent` header always travels: a trace is then whole as soon as an exporter is set.

use std::{collections::HashMap, sync::OnceLock};

use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer as _, filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt,
};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the subscriber once per process. `RUST_LOG` filters the log output (default
/// `info`); `LOG_FORMAT=json` switches to JSON lines. Later calls (several services in one
/// process) do nothing.
pub fn init(service: &'static str) {
    install(service, Output::Stdout);
}

/// For tests: the same tracing and trace propagation as [`init`], but logs go to the test
/// harness, and only when `TEST_LOG` is set.
pub fn init_for_tests(service: &'static str) {
    install(service, Output::TestHarness);
}

enum Output {
    Stdout,
    TestHarness,
}

fn install(service: &'static str, output: Output) {
    PROVIDER.get_or_init(|| {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let mut builder = SdkTracerProvider::builder()
            .with_resource(Resource::builder().with_service_name(service).build());
        if crate::config::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
            match opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
            {
                Ok(exporter) => builder = builder.with_batch_exporter(exporter),
                Err(e) => eprintln!("OTLP exporter not started: {e}"),
            }
        }
        let provider = builder.build();
        global::set_tracer_provider(provider.clone());
        // Spans always feed OpenTelemetry, whatever the log filter, so trace context travels.
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            .with_filter(LevelFilter::INFO);
        let filter =
            || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let registry = tracing_subscriber::registry().with(otel);
        let result = match output {
            Output::Stdout if crate::config::var("LOG_FORMAT").is_some_and(|f| f == "json") => {
                registry
                    .with(
                        tracing_subscriber::fmt::layer()
                            .json()
                            .with_filter(filter()),
                    )
                    .try_init()
            }
            Output::Stdout => {
                // Colours only on a terminal, never into log files.
                let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
                registry
                    .with(
                        tracing_subscriber::fmt::layer()
                            .with_ansi(ansi)
                            .with_filter(filter()),
                    )
                    .try_init()
            }
            Output::TestHarness => {
                let on = std::env::var_os("TEST_LOG").is_some();
                let filter = if on { filter() } else { EnvFilter::new("off") };
                registry
                    .with(
                        tracing_subscriber::fmt::layer()
                            .with_test_writer()
                            .with_filter(filter),
                    )
                    .try_init()
            }
        };
        // A test harness may have installed its own subscriber first; keep it.
        let _ = result;
        provider
    });
}

/// Flushes spans that are still buffered (call before exit).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
    }
}

/// The current span's context as W3C headers (`traceparent`, maybe `tracestate`).
pub fn current_context_headers() -> HashMap<String, String> {
    let cx = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier
}

/// Makes `span` a child of the trace described by `headers` (a `traceparent` from a message).
pub fn set_parent_from<'a>(
    span: &tracing::Span,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
) {
    let carrier: HashMap<String, String> = headers
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let cx = global::get_text_map_propagator(|p| p.extract(&carrier));
    let _ = span.set_parent(cx);
}
