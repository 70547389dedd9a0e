using System;

namespace Daemon.Interop;

/// <summary>
/// The open(2) flags Daemon.Core uses, with the values of x86-64 and arm64 alike. O_NOFOLLOW is
/// not here: its value depends on the architecture (see <see cref="Posix.O_NOFOLLOW"/>).
/// </summary>
[Flags]
internal enum OpenFlags
{
    O_RDONLY = 0,
    O_WRONLY = 0x1,
    O_RDWR = 0x2,
    O_CREAT = 0x40,
    O_EXCL = 0x80,
    O_NOCTTY = 0x100,
    O_APPEND = 0x400,
    O_NONBLOCK = 0x800,
    O_CLOEXEC = 0x80000,
}
