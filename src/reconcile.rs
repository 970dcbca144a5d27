//! One reconcile pass, end to end: load the desired state, read the remote, plan,
//! apply, report. Knows nothing about what triggered it.
