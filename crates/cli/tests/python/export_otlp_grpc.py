"""The OpenTelemetry Python SDK's OTLP/gRPC exporters, as an application uses them: one trace
(a root and a child span, gzip) and one log inside the child, with a known trace id, then a
flush. Run by crates/cli/tests/otlp_grpc_python.rs: argv = endpoint token trace_id_hex."""
import sys
import time

from grpc import Compression
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

endpoint, token, trace_id = sys.argv[1], sys.argv[2], int(sys.argv[3], 16)


class KnownTraceId(RandomIdGenerator):
    def generate_trace_id(self):
        return trace_id


headers = (("authorization", f"Bearer {token}"),)
resource = Resource.create({"service.name": "checkout-python", "deployment.environment": "e2e"})
tracer_provider = TracerProvider(resource=resource, id_generator=KnownTraceId())
tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
    endpoint=endpoint, insecure=True, headers=headers, compression=Compression.Gzip, timeout=20)))
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(
    endpoint=endpoint, insecure=True, headers=headers, timeout=20)))
tracer = tracer_provider.get_tracer("otlp-grpc-python")
logger = logger_provider.get_logger("otlp-grpc-python")

with tracer.start_as_current_span("POST /checkout"):
    with tracer.start_as_current_span("stripe_api_call") as child:
        child.set_attribute("decline_code", "do_not_honor")
        logger.emit(
            timestamp=time.time_ns(),
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body="card declined by issuer",
        )
ok = tracer_provider.force_flush() and logger_provider.force_flush()
tracer_provider.shutdown()
logger_provider.shutdown()
print("exported" if ok else "flush failed")
sys.exit(0 if ok else 1)
