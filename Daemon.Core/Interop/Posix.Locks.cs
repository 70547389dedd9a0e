using Mono.Unix.Native;

namespace Daemon.Interop;

/// <summary>POSIX record locks (fcntl) on a whole file, which, unlike flock, name their holder.</summary>
internal static partial class Posix
{
    /// <summary>Takes (or releases) a whole-file lock without waiting; errno EAGAIN/EACCES means held.</summary>
    public static int SetLock(int fd, LockType type, out int errno) =>
        RetryOnEintr((fd, type), static s =>
        {
            Flock request = WholeFile(s.type);
            return Syscall.fcntl(s.fd, FcntlCommand.F_SETLK, ref request);
        }, out errno);

    /// <summary>
    /// Who holds a lock that conflicts with a write lock on the whole file: <paramref name="type"/>
    /// F_UNLCK when nobody, F_WRLCK or F_RDLCK otherwise, and <paramref name="holder"/> the owner's
    /// pid (-1 for an open file description lock, which names no process).
    /// </summary>
    public static int GetLock(int fd, out LockType type, out int holder, out int errno)
    {
        Flock probe = WholeFile(LockType.F_WRLCK);
        int result = WithErrno(Syscall.fcntl(fd, FcntlCommand.F_GETLK, ref probe), out errno);
        type = result == 0 ? probe.l_type : LockType.F_UNLCK;
        holder = type == LockType.F_UNLCK ? 0 : probe.l_pid;
        return result;
    }

    private static Flock WholeFile(LockType type) =>
        new() { l_type = type, l_whence = SeekFlags.SEEK_SET, l_start = 0, l_len = 0 };
}
