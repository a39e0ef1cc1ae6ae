//! What an answer of `grpc.health.v1.Health/Check` means for the routes, and the words for it.
//! Pure, so every status the protocol defines is tested without a server.

use exaprobe_core::Outcome;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

/// The verdict on a HealthCheckResponse's `status` field (an `i32` on the wire, so a value the
/// protocol does not define yet is possible). `subject` names the service and the address.
pub(crate) fn of_response(status: i32, subject: &str) -> Outcome {
    match ServingStatus::try_from(status) {
        Ok(ServingStatus::Serving) => Outcome::Healthy,
        Ok(ServingStatus::Unknown) => Outcome::degraded(format!(
            "{subject}: UNKNOWN (the server does not know its own health yet)"
        )),
        Ok(ServingStatus::NotServing) => Outcome::unhealthy(format!("{subject}: NOT_SERVING")),
        Ok(ServingStatus::ServiceUnknown) => Outcome::unhealthy(format!(
            "{subject}: SERVICE_UNKNOWN (the server does not know this service)"
        )),
        Err(_) => Outcome::unhealthy(format!("{subject}: unexpected serving status {status}")),
    }
}

/// The verdict on a gRPC status the server sent instead of an answer.
pub(crate) fn of_status(code: Code, message: &str, subject: &str) -> Outcome {
    let message = exaprobe_core::kit::reason::preview(message.as_bytes());
    let said = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    Outcome::unhealthy(match code {
        Code::NotFound => format!("{subject}: unknown service (gRPC NOT_FOUND{said})"),
        Code::Unimplemented => format!(
            "{subject}: the server does not implement grpc.health.v1.Health (gRPC UNIMPLEMENTED{said})"
        ),
        code => format!("{subject}: gRPC error {}{said}", name(code)),
    })
}

/// The canonical upper-case name of a gRPC code, as the specification and other tools write it.
fn name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBJECT: &str = "service \"a\" on 127.0.0.1:1";

    #[test]
    fn every_serving_status() {
        assert_eq!(of_response(1, SUBJECT), Outcome::Healthy);
        assert_eq!(
            of_response(0, SUBJECT),
            Outcome::degraded(
                "service \"a\" on 127.0.0.1:1: UNKNOWN (the server does not know its own health yet)"
            )
        );
        assert_eq!(
            of_response(2, SUBJECT),
            Outcome::unhealthy("service \"a\" on 127.0.0.1:1: NOT_SERVING")
        );
        assert!(!of_response(3, SUBJECT).is_serving());
        assert_eq!(
            of_response(9, SUBJECT),
            Outcome::unhealthy("service \"a\" on 127.0.0.1:1: unexpected serving status 9")
        );
    }

    #[test]
    fn statuses_instead_of_answers() {
        assert_eq!(
            of_status(Code::NotFound, "service not registered", SUBJECT),
            Outcome::unhealthy(
                "service \"a\" on 127.0.0.1:1: unknown service (gRPC NOT_FOUND: service not registered)"
            )
        );
        assert_eq!(
            of_status(Code::PermissionDenied, "no\nway", SUBJECT),
            Outcome::unhealthy(
                "service \"a\" on 127.0.0.1:1: gRPC error PERMISSION_DENIED: no way"
            )
        );
        assert_eq!(
            of_status(Code::Unimplemented, "", SUBJECT).reason(),
            Some(
                "service \"a\" on 127.0.0.1:1: the server does not implement grpc.health.v1.Health (gRPC UNIMPLEMENTED)"
            )
        );
        let long = "x".repeat(500);
        let reason = of_status(Code::Internal, &long, SUBJECT);
        assert!(reason.reason().unwrap().len() < 200);
    }
}
