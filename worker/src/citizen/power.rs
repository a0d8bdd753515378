//! `--pause-on-battery`: Linux's `/sys/class/power_supply` (the directory
//! is passed in, so tests build their own).

use std::path::Path;

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// True when the machine runs on battery: it has a battery and no mains
/// (or USB) supply reports `online` = 1. A machine without a battery, or
/// whose supplies say nothing, is never on battery.
pub fn on_battery(power_supply: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(power_supply) else {
        return false;
    };
    let (mut battery, mut mains_online) = (false, false);
    for e in entries.flatten() {
        let dir = e.path();
        match read(&dir, "type").as_deref() {
            Some("Battery") => battery = true,
            Some("Mains" | "USB" | "USB_C" | "USB_PD") => {
                mains_online |= read(&dir, "online").as_deref() == Some("1")
            }
            _ => {}
        }
    }
    battery && !mains_online
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supply(root: &Path, name: &str, kind: &str, online: Option<&str>) {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("type"), format!("{kind}\n")).unwrap();
        if let Some(o) = online {
            std::fs::write(d.join("online"), format!("{o}\n")).unwrap();
        }
    }

    #[test]
    fn a_laptop_unplugged_is_on_battery() {
        let t = tempfile::tempdir().unwrap();
        supply(t.path(), "BAT0", "Battery", None);
        supply(t.path(), "AC", "Mains", Some("0"));
        assert!(on_battery(t.path()));
        std::fs::write(t.path().join("AC").join("online"), "1\n").unwrap();
        assert!(!on_battery(t.path()));
    }

    #[test]
    fn a_desktop_or_a_missing_directory_is_not() {
        let t = tempfile::tempdir().unwrap();
        assert!(!on_battery(t.path()));
        supply(t.path(), "AC", "Mains", Some("0"));
        assert!(!on_battery(t.path()), "no battery at all");
        assert!(!on_battery(&t.path().join("nope")));
    }
}
