using System;
using System.Threading;
using Daemon.Files;
using Daemon.Interop;

namespace Daemon.PidFiles;

/// <summary>The real pid files, read with O_NOFOLLOW and POSIX record locks.</summary>
internal sealed class PidFileStore : IPidFileStore
{
    private const int TransientLooks = 50;

    public static PidFileStore Instance { get; } = new();

    /// <summary>The name a fresh pid file is made under before it is renamed over the path.</summary>
    public static string FreshPath(string path) => path + ".new";

    public PidFileState Inspect(string path)
    {
        string? problem = GuardedFile.Open("pid file", path, OpenFlags.O_RDONLY, 0, out int fd, out FileStatus file, out _);
        if (problem is not null)
        {
            return problem.Length == 0 ? PidFileState.Missing : PidFileState.Unusable(problem);
        }

        try
        {
            PidFileState state = Classify(fd, path);
            for (int look = 1; look < TransientLooks && IsTransient(state); look++)
            {
                // A stop removing a stale file, or a daemon between its lock and its truncation,
                // holds the lock of a file naming someone else for microseconds: look again.
                Thread.Sleep(2);
                state = Classify(fd, path);
            }

            return state with { Owner = file.Uid };
        }
        finally
        {
            Posix.Close(fd);
        }
    }

    public bool TryRemoveStale(string path, out string? problem)
    {
        // A fresh file left by a daemon that died while replacing a poisoned one goes too.
        return RemoveIfUnlocked(path, null, out problem) && RemoveIfUnlocked(FreshPath(path), null, out problem);
    }

    public bool TryRemoveNaming(string path, int pid, out string? problem) => RemoveIfUnlocked(path, pid, out problem);

    /// <summary>
    /// What the open pid file <paramref name="fd"/> says: only a write lock held by a process on
    /// byte 0 makes a daemon (a read lock or an open file description lock, whose holder is -1, does
    /// not). It is starting while it holds <see cref="PidFileLocks.StartingByte"/> too, unless its lock
    /// covers the whole file: then (an older daemon's protocol) while the file is empty. Each byte is
    /// asked on its own, so a read lock someone takes on a byte the daemon let go changes nothing.
    /// </summary>
    internal static PidFileState Classify(int fd, string path)
    {
        Span<byte> buffer = stackalloc byte[PidFileContent.MaxLength + 1];
        long n = Posix.ReadAt(fd, buffer, 0, out int errno);
        if (n < 0)
        {
            return PidFileState.Unusable(DaemonException.FromErrno($"cannot read pid file {PathText.Quote(path)}", errno).Message);
        }

        ReadOnlySpan<byte> content = buffer[..(int)n];
        int holder = PidFileLocks.WriteLocker(fd, 0, out errno);
        if (holder == 0)
        {
            return new PidFileState(PidFileKind.Stale, 0, PidFileContent.Parse(content), PidFileContent.Quote(content), null);
        }

        int past = holder < 0 ? -1 : PidFileLocks.WriteLocker(fd, PidFileLocks.PastTheDaemon, out errno);
        int starting = past < 0 ? -1 : PidFileLocks.WriteLocker(fd, PidFileLocks.StartingByte, out errno);
        if (starting < 0)
        {
            return PidFileState.Unusable(DaemonException.FromErrno($"cannot test the lock of pid file {PathText.Quote(path)}", errno).Message);
        }

        bool stillStarting = past == holder ? content.IsEmpty : starting == holder;
        return stillStarting
            ? PidFileState.Starting(holder, PidFileContent.Quote(content))
            : new PidFileState(PidFileKind.Locked, holder, PidFileContent.Parse(content), PidFileContent.Quote(content), null);
    }

    private static bool Names(int fd, int pid)
    {
        Span<byte> buffer = stackalloc byte[PidFileContent.MaxLength + 1];
        long n = Posix.ReadAt(fd, buffer, 0, out _);
        return n > 0 && PidFileContent.Parse(buffer[..(int)n]) == pid;
    }

    /// <summary>A write lock held by a process the file does not name: a passing state, not a daemon.</summary>
    internal static bool IsTransient(in PidFileState state) => state.Kind == PidFileKind.Locked && !state.NamesItsHolder;

    private static bool RemoveIfUnlocked(string path, int? naming, out string? problem)
    {
        problem = GuardedFile.Open("pid file", path, OpenFlags.O_RDWR, 0, out int fd, out FileStatus status, out _);
        if (problem is not null)
        {
            bool missing = problem.Length == 0;
            problem = missing ? null : problem;
            return missing;
        }

        try
        {
            if (status.Uid != Posix.GetEffectiveUid())
            {
                problem = $"pid file {PathText.Quote(path)} belongs to uid {status.Uid}; leaving it";
                return false;
            }

            // Holding the lock while unlinking: a daemon starting now either sees our lock or,
            // having locked the old inode, finds the path no longer names it and starts over.
            if (Posix.SetLock(fd, LockType.F_WRLCK, out int errno) < 0)
            {
                // Held: by a daemon (re)started meanwhile, or read-locked by someone, in which case
                // the next start replaces the file rather than reusing it. Either way, not ours to remove.
                bool held = Posix.IsHeldElsewhere(errno);
                problem = held ? null : DaemonException.FromErrno($"cannot lock pid file {PathText.Quote(path)}", errno).Message;
                return held;
            }

            if (!GuardedFile.PathStillNames(path, status))
            {
                return true;
            }

            if (naming is { } pid && !Names(fd, pid))
            {
                return true;
            }

            if (Posix.Unlink(path, out errno) < 0 && errno != Errno.ENOENT)
            {
                problem = DaemonException.FromErrno($"cannot remove stale pid file {PathText.Quote(path)}", errno).Message;
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
