using System.Runtime.InteropServices;

namespace Daemon.Interop;

/// <summary>POSIX record locks (fcntl) on a whole file, which, unlike flock, name their holder.</summary>
internal static unsafe partial class Posix
{
    internal const int F_GETLK = 5;
    internal const int F_SETLK = 6;

    /// <summary>Takes (or releases) a whole-file lock without waiting; errno EAGAIN/EACCES means held.</summary>
    public static int SetLock(int fd, LockType type, out int errno) =>
        RetryOnEintr((fd, type), static s =>
        {
            Flock request = WholeFile(s.type);
            return Libc.fcntl(s.fd, F_SETLK, &request);
        }, out errno);

    /// <summary>True when <see cref="SetLock"/> failed because someone else holds a conflicting lock.</summary>
    public static bool IsHeldElsewhere(int errno) => errno is Errno.EAGAIN or Errno.EACCES;

    /// <summary>
    /// Who holds a lock that conflicts with a write lock on the whole file: <paramref name="type"/>
    /// F_UNLCK when nobody, F_WRLCK or F_RDLCK otherwise, and <paramref name="holder"/> the owner's
    /// pid (-1 for an open file description lock, which names no process).
    /// </summary>
    public static int GetLock(int fd, out LockType type, out int holder, out int errno)
    {
        Flock probe = WholeFile(LockType.F_WRLCK);
        int result = WithErrno(Libc.fcntl(fd, F_GETLK, &probe), out errno);
        type = result == 0 ? probe.l_type : LockType.F_UNLCK;
        holder = type == LockType.F_UNLCK ? 0 : probe.l_pid;
        return result;
    }

    private static Flock WholeFile(LockType type) =>
        new() { l_type = type, l_whence = SEEK_SET, l_start = 0, l_len = 0 };

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
