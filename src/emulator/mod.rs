//! `yetifs serve`: a faithful, persistent server of API v2.
