using System;
using Daemon.Interop;
using Mono.Unix.Native;

namespace Daemon.PidFiles;

/// <summary>Looks at pid files from outside the daemon: the seam the commands decide through.</summary>
internal interface IPidFileStore
{
    /// <summary>Reads the file at <paramref name="path"/> and asks the kernel who holds its lock.</summary>
    PidFileState Inspect(string path);

    /// <summary>
    /// Removes the file when nobody holds its lock and it is ours. True when no stale file is left
    /// (removed, missing, or locked by a live daemon); otherwise <paramref name="problem"/> says why.
    /// </summary>
    bool TryRemoveStale(string path, out string? problem);
}

/// <summary>The real pid files, read with O_NOFOLLOW and POSIX record locks.</summary>
internal sealed class PidFileStore : IPidFileStore
{
    public static PidFileStore Instance { get; } = new();

    public PidFileState Inspect(string path)
    {
        string? problem = PidFileDescriptor.Open(path, OpenFlags.O_RDONLY, out int fd, out _);
        if (problem is not null)
        {
            return problem.Length == 0 ? PidFileState.Missing : PidFileState.Unusable(problem);
        }

        try
        {
            Span<byte> buffer = stackalloc byte[PidFileContent.MaxLength + 1];
            long n = Posix.ReadAt(fd, buffer, 0, out int errno);
            if (n < 0)
            {
                return PidFileState.Unusable(DaemonException.FromErrno($"cannot read pid file {path}", errno).Message);
            }

            ReadOnlySpan<byte> content = buffer[..(int)n];
            if (Posix.GetLockHolder(fd, out int holder, out errno) < 0)
            {
                return PidFileState.Unusable(DaemonException.FromErrno($"cannot test the lock of pid file {path}", errno).Message);
            }

            var kind = holder > 0 ? PidFileKind.Locked : PidFileKind.Stale;
            return new PidFileState(kind, holder, PidFileContent.Parse(content), PidFileContent.Quote(content), null);
        }
        finally
        {
            Posix.Close(fd);
        }
    }

    public bool TryRemoveStale(string path, out string? problem)
    {
        problem = PidFileDescriptor.Open(path, OpenFlags.O_RDWR, out int fd, out Stat stat);
        if (problem is not null)
        {
            bool missing = problem.Length == 0;
            problem = missing ? null : problem;
            return missing;
        }

        try
        {
            if (stat.st_uid != Posix.GetEffectiveUid())
            {
                problem = $"pid file {path} belongs to uid {stat.st_uid}; leaving it";
                return false;
            }

            // Holding the lock while unlinking: a daemon starting now either sees our lock or,
            // having locked the old inode, finds the path no longer names it and starts over.
            if (Posix.SetLock(fd, LockType.F_WRLCK, out int errno) < 0)
            {
                // Held: a daemon (re)started meanwhile, and the file is its own, not stale.
                bool held = errno is (int)Errno.EAGAIN or (int)Errno.EACCES;
                problem = held ? null : DaemonException.FromErrno($"cannot lock pid file {path}", errno).Message;
                return held;
            }

            if (!PidFileDescriptor.PathStillNames(path, stat))
            {
                return true;
            }

            if (Posix.Unlink(path, out errno) < 0 && errno != (int)Errno.ENOENT)
            {
                problem = DaemonException.FromErrno($"cannot remove stale pid file {path}", errno).Message;
                return false;
            }

            return true;
        }
        finally
        {
            Posix.Close(fd);
        }
    }
}

/// <summary>Opening a pid file safely, shared by the reader, the remover and the daemon.</summary>
internal static class PidFileDescriptor
{
    private const OpenFlags SafeFlags = OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK | OpenFlags.O_CLOEXEC | OpenFlags.O_NOCTTY;

    /// <summary>
    /// Opens a regular file without following a symbolic link and without blocking on a fifo.
    /// Returns null on success, "" when nothing is at the path, otherwise the problem as one line.
    /// </summary>
    public static string? Open(string path, OpenFlags flags, out int fd, out Stat stat)
    {
        stat = default;
        fd = Posix.Open(path, flags | SafeFlags, (FilePermissions)0b110_100_100, out int errno);
        if (fd < 0)
        {
            return errno switch
            {
                (int)Errno.ENOENT when (flags & OpenFlags.O_CREAT) == 0 => "",
                (int)Errno.ENOENT => $"cannot create pid file {path}: its folder does not exist",
                (int)Errno.ELOOP => $"pid file {path} is a symbolic link; refusing to follow it",
                (int)Errno.EISDIR => $"pid file {path} is a directory",
                _ => DaemonException.FromErrno($"cannot open pid file {path}", errno).Message,
            };
        }

        if (Posix.Fstat(fd, out stat, out errno) < 0)
        {
            Posix.Close(fd);
            fd = -1;
            return DaemonException.FromErrno($"cannot stat pid file {path}", errno).Message;
        }

        FilePermissions type = stat.st_mode & FilePermissions.S_IFMT;
        if (type != FilePermissions.S_IFREG)
        {
            Posix.Close(fd);
            fd = -1;
            return type == FilePermissions.S_IFDIR ? $"pid file {path} is a directory" : $"pid file {path} is not a regular file";
        }

        return null;
    }

    /// <summary>True when <paramref name="path"/> still names the inode <paramref name="opened"/> describes.</summary>
    public static bool PathStillNames(string path, in Stat opened) =>
        Posix.Lstat(path, out Stat now, out _) == 0 && now.st_dev == opened.st_dev && now.st_ino == opened.st_ino;
}
