using Daemon.Interop;

namespace Daemon.PidFiles;

/// <summary>
/// Which bytes of a pid file a daemon write-locks, and what each says. A daemon holds bytes 0 to
/// <see cref="StartingByte"/> while it starts and lets <see cref="StartingByte"/> go once it is
/// ready, so its file names it from the first moment (other tools read the pid then) while
/// readiness is the kernel's word, which no one without write access to the file can fake. Byte 0
/// names the daemon (F_GETLK gives its pid); nothing past <see cref="StartingByte"/> is held, so a
/// lock there by the same process is a whole-file lock: an older daemon's, whose empty file said
/// "starting", or a remover's. Locks far past the content: they never stop anyone reading it.
/// </summary>
internal static class PidFileLocks
{
    /// <summary>Held by a daemon until it is ready.</summary>
    public const long StartingByte = 1 << 20;

    /// <summary>The first byte a daemon never locks: held there means a whole-file lock.</summary>
    public const long PastTheDaemon = StartingByte + 1;

    /// <summary>Takes a daemon's lock, the starting byte included; errno EAGAIN/EACCES means held.</summary>
    public static int LockAsDaemon(int fd, out int errno) => Posix.SetLock(fd, LockType.F_WRLCK, 0, PastTheDaemon, out errno);

    /// <summary>Lets the starting byte go: from now on the file says the daemon is ready.</summary>
    public static int DeclareReady(int fd, out int errno) => Posix.SetLock(fd, LockType.F_UNLCK, StartingByte, 1, out errno);

    /// <summary>
    /// The process that write-locks byte <paramref name="at"/> (someone else's lock: the caller's
    /// own never shows), or 0 when nobody does. A read lock, which anyone who can read the file may
    /// take, or an open file description lock, which names no process, is nobody.
    /// </summary>
    public static int WriteLocker(int fd, long at, out int errno)
    {
        if (Posix.GetLock(fd, at, 1, out LockType type, out int holder, out errno) < 0)
        {
            return -1;
        }

        return type == LockType.F_WRLCK && holder > 0 ? holder : 0;
    }
}
