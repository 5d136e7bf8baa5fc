//! A live mount's control surface: the report `yetifs status` shows (`report`) and the unix
//! socket the mount answers on, through which `yetifs status` and `yetifs sync` reach it
//! (`socket`), and `yetifs fetch` and `yetifs share` (`hosted`).
pub mod hosted;
pub mod report;
pub mod socket;

pub use report::*;
