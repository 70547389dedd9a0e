namespace Daemon.Interop;

/// <summary>
/// The errno values Daemon.Core tells apart. Linux numbers them alike on x86-64 and arm64 (the
/// asm-generic table); a unit test checks them against this machine's C headers.
/// </summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int ENXIO = 6;
    public const int EAGAIN = 11;
    public const int EACCES = 13;
    public const int EEXIST = 17;
    public const int EISDIR = 21;
    public const int ENAMETOOLONG = 36;
    public const int ENOSYS = 38;
    public const int ELOOP = 40;
    public const int ECONNREFUSED = 111;
}
