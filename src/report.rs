//! Text and JSON reports of a pass or a validation; the only writer to stdout.
