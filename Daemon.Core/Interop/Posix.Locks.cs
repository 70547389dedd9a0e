using System.Runtime.InteropServices;

namespace Daemon.Interop;

/// <summary>POSIX record locks (fcntl) on a whole file, which, unlike flock, name their holder.</summary>
internal static unsafe partial class Posix
{
    internal const int F_GETLK = 5;
    internal const int F_SETLK = 6;

    /// <summary>Takes (or releases) a whole-file lock without waiting; errno EAGAIN/EACCES means held.</summary>
    public static int SetLock(int fd, LockType type, out int errno) => SetLock(fd, type, 0, 0, out errno);

    /// <summary>
    /// Takes (or releases) a lock on <paramref name="length"/> bytes from <paramref name="start"/>
    /// (0: to the end of the file and beyond) without waiting; errno EAGAIN/EACCES means held.
    /// </summary>
    public static int SetLock(int fd, LockType type, long start, long length, out int errno) =>
        RetryOnEintr((fd, type, start, length), static s =>
        {
            Flock request = Range(s.type, s.start, s.length);
            return Libc.fcntl(s.fd, F_SETLK, &request);
        }, out errno);

    /// <summary>True when <see cref="SetLock(int, LockType, out int)"/> failed because someone else holds a conflicting lock.</summary>
    public static bool IsHeldElsewhere(int errno) => errno is Errno.EAGAIN or Errno.EACCES;

    /// <summary>
    /// Who holds a lock that conflicts with a write lock on the whole file: <paramref name="type"/>
    /// F_UNLCK when nobody, F_WRLCK or F_RDLCK otherwise, and <paramref name="holder"/> the owner's
    /// pid (-1 for an open file description lock, which names no process).
    /// </summary>
    public static int GetLock(int fd, out LockType type, out int holder, out int errno) =>
        GetLock(fd, 0, 0, out type, out holder, out errno);

    /// <summary>
    /// As <see cref="GetLock(int, out LockType, out int, out int)"/>, for the <paramref name="length"/>
    /// bytes from <paramref name="start"/> alone. The caller's own locks never conflict: it sees others'.
    /// </summary>
    public static int GetLock(int fd, long start, long length, out LockType type, out int holder, out int errno)
    {
        Flock probe = Range(LockType.F_WRLCK, start, length);
        int result = WithErrno(Libc.fcntl(fd, F_GETLK, &probe), out errno);
        type = result == 0 ? probe.l_type : LockType.F_UNLCK;
        holder = type == LockType.F_UNLCK ? 0 : probe.l_pid;
        return result;
    }

    private static Flock Range(LockType type, long start, long length) =>
        new() { l_type = type, l_whence = SEEK_SET, l_start = start, l_len = length };

    /// <summary>struct flock on 64-bit Linux: 32 bytes, with padding after l_whence and l_pid.</summary>
    internal struct Flock
    {
        public LockType l_type;
        public short l_whence;
        public long l_start;
        public long l_len;
        public int l_pid;
    }

    private static partial class Libc
    {
        [LibraryImport("libc", SetLastError = true)]
        internal static partial int fcntl(int fd, int command, Flock* lockRequest);
    }
}
