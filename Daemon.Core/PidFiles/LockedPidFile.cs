using System;
using System.Threading;
using Daemon.Files;
using Daemon.Interop;

namespace Daemon.PidFiles;

/// <summary>
/// The daemon's own pid file: created without following links, write-locked with POSIX record
/// locks for the daemon's whole life (the kernel releases them when the process dies), holding
/// "PID\n" from the moment it is locked. Whether the daemon is ready is told by its lock on
/// <see cref="PidFileLocks.StartingByte"/>, held until then.
/// </summary>
internal sealed class LockedPidFile : IPidFile, System.IDisposable
{
    private const int Attempts = 50;
    private const uint Private = 0b110_000_000;
    private const uint Public = 0b110_100_100;

    private readonly string _path;
    private readonly FileStatus _status;
    private int _fd;
    private bool _fresh;
    private int _published; // the pid written, so that it is written once
    private bool _ready;

    private LockedPidFile(string path, int fd, FileStatus status)
    {
        _path = path;
        _fd = fd;
        _status = status;
    }

    /// <summary>The path of the file.</summary>
    public string Path => _path;

    /// <summary>True while the path names this file (a next generation may have taken it over).</summary>
    public bool IsAtItsPath => _fd >= 0 && GuardedFile.PathStillNames(_path, _status);

    /// <summary>
    /// Creates or takes over the pid file at <paramref name="path"/>, locked as a daemon still
    /// starting and naming this process. Returns null and the holder's pid when a live daemon,
    /// ready or starting, holds it. A stale file that someone else holds a (read) lock on where a
    /// daemon's lock goes is never reused: a fresh one is renamed over it.
    /// </summary>
    /// <exception cref="DaemonException">The file cannot be created, locked or written.</exception>
    public static LockedPidFile? Acquire(string path, out int holder)
    {
        holder = 0;
        string shown = PathText.Quote(path);
        for (int attempt = 0; attempt < Attempts; attempt++)
        {
            if (attempt > 0)
            {
                // Another start or stop is in the middle of its own few system calls.
                Thread.Sleep(2);
            }

            string? problem = GuardedFile.Open("pid file", path, OpenFlags.O_RDWR | OpenFlags.O_CREAT, Public, out int fd, out FileStatus status, out _);
            if (problem is not null)
            {
                throw new DaemonException(problem);
            }

            var candidate = new LockedPidFile(path, fd, status);
            try
            {
                CheckOwner(shown, status);
                if (PidFileLocks.LockAsDaemon(fd, out int errno) == 0)
                {
                    if (!GuardedFile.PathStillNames(path, status))
                    {
                        // Removed or replaced between open and lock: this inode is nobody's pid file.
                        candidate.Close();
                        continue;
                    }

                    candidate.Write(Environment.ProcessId);
                    return candidate;
                }

                if (!Posix.IsHeldElsewhere(errno))
                {
                    throw DaemonException.FromErrno($"cannot lock pid file {shown}", errno);
                }

                PidFileState state = PidFileStore.Classify(fd, path);
                if (state.IsHeldByDaemon)
                {
                    holder = state.Holder;
                    candidate.Close();
                    return null;
                }

                LockedPidFile? fresh = state.Kind == PidFileKind.Stale ? ReplaceWithFresh(path, fd, status) : null;
                candidate.Close();
                if (fresh is not null)
                {
                    return fresh;
                }
            }
            catch
            {
                candidate.Close();
                throw;
            }
        }

        throw new DaemonException($"cannot lock pid file {shown}: it keeps changing hands");
    }

    /// <summary>
    /// Replaces the stale file open as <paramref name="staleFd"/>, which someone else holds a lock
    /// on, by a new inode: created 0600 beside it, locked, made 0644 and renamed over the path.
    /// Null when another start is doing the same or the file changed meanwhile: try again.
    /// </summary>
    private static LockedPidFile? ReplaceWithFresh(string path, int staleFd, in FileStatus staleStatus)
    {
        LockedPidFile? fresh = LockFresh(path);
        if (fresh is null)
        {
            return null;
        }

        try
        {
            // A read lock of our own on the stale file until the rename: no daemon can take it meanwhile,
            // and the check below cannot go stale. The lock goes when the caller closes its descriptor.
            if (Posix.SetLock(staleFd, LockType.F_RDLCK, out _) < 0 || !GuardedFile.PathStillNames(path, staleStatus))
            {
                fresh.Abandon();
                return null;
            }

            fresh.Write(Environment.ProcessId);
            fresh.RenameOverPath();
            return fresh;
        }
        catch
        {
            fresh.Abandon();
            throw;
        }
    }

    /// <summary>
    /// Takes the pid file over from a running daemon that agreed to hand over (a zero-downtime
    /// restart): a new inode holding <paramref name="pid"/>, renamed over the path, so that the path
    /// names the old daemon, then the new one, and never neither.
    /// </summary>
    /// <exception cref="DaemonException">Another restart holds the fresh file, or a step failed.</exception>
    public static LockedPidFile TakeOver(string path, int pid)
    {
        LockedPidFile fresh = LockFresh(path) ?? throw new DaemonException($"cannot take pid file {PathText.Quote(path)} over: another restart is doing so");
        int current = -1;
        try
        {
            fresh.Publish(pid);
            current = HoldOffRemovers(path);
            fresh.RenameOverPath();
            return fresh;
        }
        catch
        {
            fresh.Abandon();
            throw;
        }
        finally
        {
            if (current >= 0)
            {
                Posix.Close(current);
            }
        }
    }

    /// <summary>How long a take-over waits for a lock on the file it replaces (tests lengthen it).</summary>
    internal static TimeSpan RemoverPatience { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Write-locks the file now at <paramref name="path"/> for the rename over it, unless a daemon
    /// it names holds it (the running daemon of a restart). A stale file's remover (a failed
    /// restart's launcher) locks it, checks that the path still names it and unlinks it: without
    /// this lock, a daemon taking its pid file back could rename its file over the path between
    /// that check and the unlink, and lose it. With it, the two take turns. Returns the descriptor
    /// to close after the rename, or -1 when there is nothing to hold.
    /// </summary>
    private static int HoldOffRemovers(string path)
    {
        if (GuardedFile.Open("pid file", path, OpenFlags.O_RDWR, 0, out int fd, out _, out _) is not null)
        {
            return -1;
        }

        // A remover holds it for a few system calls; wait that out, within reason.
        long deadline = Environment.TickCount64 + (long)RemoverPatience.TotalMilliseconds;
        while (Posix.SetLock(fd, LockType.F_WRLCK, out int errno) < 0)
        {
            bool held = Posix.IsHeldElsewhere(errno);
            if (!held || PidFileStore.Classify(fd, path).NamesItsHolder || Environment.TickCount64 > deadline)
            {
                Posix.Close(fd);
                return -1;
            }

            Thread.Sleep(5);
        }

        return fd;
    }

    /// <summary>
    /// Creates (or takes over a dead replacer's) NAME.new, locked as a daemon still starting, empty
    /// and 0600. Its one fixed name lets one replacer at a time through; null when another holds it.
    /// </summary>
    private static LockedPidFile? LockFresh(string path)
    {
        string freshPath = PidFileStore.FreshPath(path);
        string? problem = GuardedFile.Open("pid file", freshPath, OpenFlags.O_RDWR | OpenFlags.O_CREAT, Private, out int fd, out FileStatus status, out _);
        if (problem is not null)
        {
            throw new DaemonException(problem);
        }

        var fresh = new LockedPidFile(path, fd, status);
        try
        {
            CheckOwner(PathText.Quote(freshPath), status);
            if (PidFileLocks.LockAsDaemon(fd, out _) < 0 || !GuardedFile.PathStillNames(freshPath, status))
            {
                fresh.Close();
                return null;
            }

            fresh._fresh = true;
            fresh.Truncate();
            fresh.ChangeMode(Private);
            return fresh;
        }
        catch
        {
            fresh.Abandon();
            throw;
        }
    }

    /// <summary>Makes the fresh file 0644 and renames it over the pid file's path.</summary>
    private void RenameOverPath()
    {
        ChangeMode(Public);
        if (Posix.Rename(PidFileStore.FreshPath(_path), _path, out int errno) < 0)
        {
            throw DaemonException.FromErrno($"cannot replace pid file {PathText.Quote(_path)}", errno);
        }

        _fresh = false;
    }

    private static void CheckOwner(string shown, in FileStatus status)
    {
        if (status.Uid != Posix.GetEffectiveUid())
        {
            throw new DaemonException($"pid file {shown} belongs to uid {status.Uid}; refusing to use it");
        }
    }

    /// <summary>
    /// Names <paramref name="pid"/> (unless the file does already) and lets the starting byte go:
    /// from now on, the file says the daemon is ready. A restart's new daemon does so before the
    /// rename, so that its file names a ready daemon the moment it appears at the path.
    /// </summary>
    /// <exception cref="DaemonException">The pid cannot be written, or the lock not changed.</exception>
    public void Publish(int pid)
    {
        Write(pid);
        if (!_ready)
        {
            if (PidFileLocks.DeclareReady(_fd, out int errno) < 0)
            {
                throw DaemonException.FromErrno($"cannot mark pid file {PathText.Quote(_path)} ready", errno);
            }

            _ready = true;
        }
    }

    /// <summary>
    /// Writes "PID\n", once: rewriting it would empty the file for a moment, in which other tools
    /// would read no pid.
    /// </summary>
    private void Write(int pid)
    {
        if (_published == pid)
        {
            return;
        }

        Truncate();
        byte[] content = PidFileContent.Format(pid);
        if (!Posix.WriteAll(_fd, content, out int errno))
        {
            throw DaemonException.FromErrno($"cannot write pid file {PathText.Quote(_path)}", errno);
        }

        _published = pid;
    }

    private void Truncate()
    {
        if (Posix.Truncate(_fd, out int errno) < 0)
        {
            throw DaemonException.FromErrno($"cannot truncate pid file {PathText.Quote(_path)}", errno);
        }
    }

    private void ChangeMode(uint mode)
    {
        if (Posix.ChangeMode(_fd, mode, out int errno) < 0)
        {
            throw DaemonException.FromErrno($"cannot set the mode of pid file {PathText.Quote(_path)}", errno);
        }
    }

    /// <summary>Removes the fresh file, while it is still NAME.new and ours, and lets it go.</summary>
    private void Abandon()
    {
        if (_fd >= 0 && _fresh && GuardedFile.PathStillNames(PidFileStore.FreshPath(_path), _status))
        {
            _ = Posix.Unlink(PidFileStore.FreshPath(_path), out _);
        }

        Close();
    }

    /// <summary>
    /// Removes the file if the path still names it, then lets the lock go. Without the right to
    /// unlink (after dropping privileges) the file stays: unlocked, it is stale, and <c>stop</c>
    /// removes it.
    /// </summary>
    public void Remove()
    {
        if (_fd < 0)
        {
            return;
        }

        if (GuardedFile.PathStillNames(_path, _status))
        {
            _ = Posix.Unlink(_path, out _);
        }

        Close();
    }

    /// <summary>Lets the lock go without removing the file.</summary>
    public void Dispose() => Close();

    private void Close()
    {
        if (_fd >= 0)
        {
            Posix.Close(_fd);
            _fd = -1;
        }
    }
}
