//! The live status board: one message per chat listing the chat's tasks.
