//! Template snapshot tests live in tests/.
