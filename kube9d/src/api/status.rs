//! The one place internal errors become gRPC statuses.

use tonic::Status;

use crate::state::Error;

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::NotFound { .. } => Status::not_found(msg),
            Error::AlreadyExists(_) => Status::already_exists(msg),
            Error::Invalid(_) => Status::invalid_argument(msg),
            Error::FailedPrecondition(_) => Status::failed_precondition(msg),
            Error::Unavailable(_) | Error::Busy(_) => Status::unavailable(msg),
            Error::Missing(_) => Status::not_found(msg),
            Error::PermissionDenied(_) => Status::permission_denied(msg),
            Error::DeadlineExceeded(_) => Status::deadline_exceeded(msg),
            Error::Cancelled(_) => Status::cancelled(msg),
            Error::Aborted(_) => Status::aborted(msg),
            Error::Internal(_) => Status::internal(msg),
            // As etcd answers once its space is exceeded: writes refused until an operator acts.
            Error::Store(crate::store::Error::ReadOnly { .. }) => Status::resource_exhausted(msg),
            Error::Store(_) => Status::internal(msg),
            Error::Runtime(crate::runtime::Error::Unsupported(..)) => Status::unimplemented(msg),
            Error::Runtime(_) => Status::unavailable(msg),
        }
    }
}
