//! The connectionOperation: the long-running job that provisions a schema.
//!
//! An operation is `inprogress` until the emulator's clock reaches `completes_at`,
//! then `completed` (or `failed` with an error). Only the clock decides, so tests
//! control completion by advancing the clock instead of sleeping.

use chrono::{DateTime, Utc};

use super::ids::OperationId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    InProgress,
    Completed,
    Failed,
}

impl OperationStatus {
    /// Graph's spelling: exactly `inprogress`, `completed` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::InProgress => "inprogress",
            OperationStatus::Completed => "completed",
            OperationStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<OperationStatus> {
        [
            OperationStatus::InProgress,
            OperationStatus::Completed,
            OperationStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == raw)
    }
}

/// The error a failed operation reports (`publicError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationError {
    pub code: String,
    pub message: String,
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionOperation {
    pub id: OperationId,
    pub status: OperationStatus,
    pub error: Option<OperationError>,
    pub created_at: DateTime<Utc>,
    pub completes_at: DateTime<Utc>,
}

impl ConnectionOperation {
    /// Whether the operation has reached its completion time at `now` but is not yet settled.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status == OperationStatus::InProgress && now >= self.completes_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_spellings_are_graphs() {
        assert_eq!(OperationStatus::InProgress.as_str(), "inprogress");
        assert_eq!(
            OperationStatus::parse("completed"),
            Some(OperationStatus::Completed)
        );
        assert_eq!(OperationStatus::parse("inProgress"), None);
    }

    #[test]
    fn an_operation_is_due_once_the_clock_reaches_its_completion_time() {
        let start = Utc::now();
        let operation = ConnectionOperation {
            id: OperationId::lookup("op"),
            status: OperationStatus::InProgress,
            error: None,
            created_at: start,
            completes_at: start + chrono::Duration::seconds(60),
        };
        assert!(!operation.is_due(start));
        assert!(!operation.is_due(start + chrono::Duration::seconds(59)));
        assert!(operation.is_due(start + chrono::Duration::seconds(60)));
    }
}
