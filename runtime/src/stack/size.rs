//! Stack size classes: powers of two from 16 KiB to 1 GiB.
//!
//! Invariant: a [`StackSize`] always holds a valid class, so code that has one never re-checks
//! it; every way to build one validates and names the offending value in its error.

use std::fmt;
use std::str::FromStr;

const MIN_SHIFT: u32 = 14;
const MAX_SHIFT: u32 = 30;
const DEFAULT_SHIFT: u32 = 18;

/// The number of size classes.
pub(crate) const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;

/// The usable size of a goroutine stack: a power of two from 16 KiB to 1 GiB.
///
/// Sizes in between round up to the next class. Only the pages a goroutine touches are
/// committed, so a large reservation costs address space, not memory.
///
/// # Examples
///
/// ```
/// use gort::stack::StackSize;
///
/// assert_eq!(StackSize::new(100_000)?.bytes(), 128 * 1024);
/// assert_eq!("1M".parse::<StackSize>()?.bytes(), 1 << 20);
/// assert_eq!(StackSize::DEFAULT.to_string(), "256 KiB");
/// assert!(StackSize::new(4096).is_err());
/// # Ok::<(), gort::stack::StackSizeError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StackSize {
    shift: u8,
}

impl StackSize {
    /// The smallest stack: 16 KiB.
    pub const MIN: StackSize = StackSize {
        shift: MIN_SHIFT as u8,
    };
    /// The largest stack: 1 GiB.
    pub const MAX: StackSize = StackSize {
        shift: MAX_SHIFT as u8,
    };
    /// The default stack: 256 KiB.
    pub const DEFAULT: StackSize = StackSize {
        shift: DEFAULT_SHIFT as u8,
    };

    /// The class holding `bytes`, rounding up to a power of two.
    ///
    /// # Errors
    ///
    /// For 0, for less than [`StackSize::MIN`] and for more than [`StackSize::MAX`].
    ///
    /// # Examples
    ///
    /// ```
    /// use gort::stack::{StackSize, StackSizeError};
    ///
    /// assert_eq!(StackSize::new(16 * 1024)?, StackSize::MIN);
    /// assert_eq!(StackSize::new(0), Err(StackSizeError::Zero));
    /// assert_eq!(
    ///     StackSize::new(2 << 30).unwrap_err().to_string(),
    ///     "stack size 2147483648 bytes is above the maximum of 1073741824 bytes (1 GiB)"
    /// );
    /// # Ok::<(), StackSizeError>(())
    /// ```
    pub fn new(bytes: usize) -> Result<StackSize, StackSizeError> {
        if bytes == 0 {
            return Err(StackSizeError::Zero);
        }
        if bytes < StackSize::MIN.bytes() {
            return Err(StackSizeError::TooSmall { bytes });
        }
        if bytes > StackSize::MAX.bytes() {
            return Err(StackSizeError::TooLarge { bytes });
        }
        Ok(StackSize {
            shift: bytes.next_power_of_two().trailing_zeros() as u8,
        })
    }

    /// The usable bytes of a stack of this class.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(gort::stack::StackSize::DEFAULT.bytes(), 256 * 1024);
    /// ```
    pub const fn bytes(self) -> usize {
        1 << self.shift
    }

    /// The class's index, 0 for [`StackSize::MIN`].
    pub(crate) fn class(self) -> usize {
        usize::from(self.shift) - MIN_SHIFT as usize
    }
}

impl Default for StackSize {
    fn default() -> Self {
        StackSize::DEFAULT
    }
}

impl TryFrom<usize> for StackSize {
    type Error = StackSizeError;

    fn try_from(bytes: usize) -> Result<Self, Self::Error> {
        StackSize::new(bytes)
    }
}

impl fmt::Display for StackSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shift {
            30.. => write!(f, "{} GiB", self.bytes() >> 30),
            20.. => write!(f, "{} MiB", self.bytes() >> 20),
            _ => write!(f, "{} KiB", self.bytes() >> 10),
        }
    }
}

/// Parses a byte count with an optional binary suffix: `262144`, `256K`, `256KiB`, `1M`, `1G`.
impl FromStr for StackSize {
    type Err = StackSizeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let digits = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, suffix) = trimmed.split_at(digits);
        let shift = match suffix.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            _ => {
                return Err(StackSizeError::Unparsable {
                    text: text.to_owned(),
                });
            }
        };
        if number.is_empty() {
            return Err(StackSizeError::Unparsable {
                text: text.to_owned(),
            });
        }
        let not_representable = || StackSizeError::NotRepresentable {
            text: text.to_owned(),
        };
        let count: usize = number.parse().map_err(|_| not_representable())?;
        let bytes = count
            .checked_mul(1 << shift)
            .ok_or_else(not_representable)?;
        StackSize::new(bytes)
    }
}

/// Why a stack size was refused.
///
/// # Examples
///
/// ```
/// use gort::stack::{StackSize, StackSizeError};
///
/// let err = "lots".parse::<StackSize>().unwrap_err();
/// assert_eq!(err, StackSizeError::Unparsable { text: "lots".into() });
/// assert_eq!(
///     StackSize::new(8192).unwrap_err().to_string(),
///     "stack size 8192 bytes is below the minimum of 16384 bytes (16 KiB)"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackSizeError {
    /// A stack of zero bytes.
    Zero,
    /// Fewer bytes than [`StackSize::MIN`].
    TooSmall {
        /// The requested size.
        bytes: usize,
    },
    /// More bytes than [`StackSize::MAX`].
    TooLarge {
        /// The requested size.
        bytes: usize,
    },
    /// A size written as text that does not fit in `usize` bytes.
    NotRepresentable {
        /// The text as given.
        text: String,
    },
    /// Text that is not a byte count.
    Unparsable {
        /// The text as given.
        text: String,
    },
}

impl fmt::Display for StackSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) = (StackSize::MIN, StackSize::MAX);
        match self {
            StackSizeError::Zero => {
                write!(
                    f,
                    "stack size 0 is invalid: a stack holds at least {} bytes ({min})",
                    min.bytes()
                )
            }
            StackSizeError::TooSmall { bytes } => {
                write!(
                    f,
                    "stack size {bytes} bytes is below the minimum of {} bytes ({min})",
                    min.bytes()
                )
            }
            StackSizeError::TooLarge { bytes } => {
                write!(
                    f,
                    "stack size {bytes} bytes is above the maximum of {} bytes ({max})",
                    max.bytes()
                )
            }
            StackSizeError::NotRepresentable { text } => write!(
                f,
                "stack size {text:?} is not representable in bytes (the maximum is {} bytes, {max})",
                max.bytes()
            ),
            StackSizeError::Unparsable { text } => {
                write!(
                    f,
                    "stack size {text:?} is not a byte count (write e.g. 262144, 256K or 1M)"
                )
            }
        }
    }
}

impl std::error::Error for StackSizeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_round_trips() {
        for shift in MIN_SHIFT..=MAX_SHIFT {
            let size = StackSize::new(1 << shift).unwrap();
            assert_eq!(size.bytes(), 1 << shift);
            assert_eq!(size.class(), (shift - MIN_SHIFT) as usize);
            assert_eq!(size.to_string().parse::<StackSize>(), Ok(size));
        }
        assert_eq!(StackSize::MAX.class(), CLASSES - 1);
    }

    #[test]
    fn sizes_round_up_to_the_next_class() {
        assert_eq!(StackSize::new((1 << 14) + 1).unwrap().bytes(), 1 << 15);
        assert_eq!(StackSize::new((1 << 30) - 1).unwrap(), StackSize::MAX);
    }

    #[test]
    fn invalid_sizes_name_the_value_and_the_bound() {
        assert_eq!(StackSize::new(0), Err(StackSizeError::Zero));
        assert_eq!(
            StackSize::new(16383),
            Err(StackSizeError::TooSmall { bytes: 16383 })
        );
        assert_eq!(
            StackSize::new((1 << 30) + 1),
            Err(StackSizeError::TooLarge {
                bytes: (1 << 30) + 1
            })
        );
        assert_eq!(
            StackSize::new(usize::MAX),
            Err(StackSizeError::TooLarge { bytes: usize::MAX })
        );
        let too_small = StackSize::new(100).unwrap_err().to_string();
        assert!(
            too_small.contains("100") && too_small.contains("16384"),
            "{too_small}"
        );
    }

    #[test]
    fn text_sizes_parse_or_say_why_not() {
        assert_eq!("262144".parse(), Ok(StackSize::DEFAULT));
        assert_eq!(" 256 KiB ".parse(), Ok(StackSize::DEFAULT));
        assert_eq!("1g".parse(), Ok(StackSize::MAX));
        assert_eq!(
            "2G".parse::<StackSize>(),
            Err(StackSizeError::TooLarge { bytes: 2 << 30 })
        );
        assert_eq!("0".parse::<StackSize>(), Err(StackSizeError::Zero));
        for text in ["99999999999999999999999", "18446744073709551615K"] {
            assert_eq!(
                text.parse::<StackSize>(),
                Err(StackSizeError::NotRepresentable { text: text.into() })
            );
        }
        for text in ["", "K", "12 parsecs", "-1", "1.5M"] {
            assert_eq!(
                text.parse::<StackSize>(),
                Err(StackSizeError::Unparsable { text: text.into() })
            );
        }
    }
}
