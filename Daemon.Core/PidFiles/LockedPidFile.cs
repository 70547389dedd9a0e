using System;
using Daemon.Interop;
using Mono.Unix.Native;

namespace Daemon.PidFiles;

/// <summary>
/// The daemon's own pid file: created without following links, locked with a POSIX record lock
/// for the daemon's whole life (the kernel releases it when the process dies), holding "PID\n".
/// </summary>
internal sealed class LockedPidFile : IDisposable
{
    private const int Attempts = 5;

    private readonly string _path;
    private readonly Stat _stat;
    private int _fd;

    private LockedPidFile(string path, int fd, Stat stat)
    {
        _path = path;
        _fd = fd;
        _stat = stat;
    }

    /// <summary>The path of the file.</summary>
    public string Path => _path;

    /// <summary>
    /// Creates or takes over the pid file at <paramref name="path"/> for process <paramref name="pid"/>.
    /// Returns null and the holder's pid when another live process holds it.
    /// </summary>
    /// <exception cref="DaemonException">The file cannot be created, locked or written.</exception>
    public static LockedPidFile? Acquire(string path, int pid, out int holder)
    {
        holder = 0;
        for (int attempt = 0; attempt < Attempts; attempt++)
        {
            string? problem = PidFileDescriptor.Open(path, OpenFlags.O_RDWR | OpenFlags.O_CREAT, out int fd, out Stat stat);
            if (problem is not null)
            {
                throw new DaemonException(problem);
            }

            var candidate = new LockedPidFile(path, fd, stat);
            bool locked = false;
            try
            {
                locked = candidate.TryLock(out holder);
                if (locked && PidFileDescriptor.PathStillNames(path, stat))
                {
                    candidate.WritePid(pid);
                    return candidate;
                }
            }
            catch
            {
                // Only a file we hold locked is ours to remove; anyone else's is left as it was.
                if (locked)
                {
                    candidate.Remove();
                }
                else
                {
                    candidate.Close();
                }

                throw;
            }

            // Either held by a live daemon, or the path was removed/replaced between open and lock:
            // drop this descriptor (and any lock on the orphaned inode) and look again.
            candidate.Close();
            if (holder > 0)
            {
                return null;
            }
        }

        throw new DaemonException($"cannot lock pid file {path}: it keeps being replaced");
    }

    /// <summary>Takes the lock without waiting; false and the holder when a live process has it.</summary>
    private bool TryLock(out int holder)
    {
        holder = 0;
        if (_stat.st_uid != Posix.GetEffectiveUid())
        {
            throw new DaemonException($"pid file {_path} belongs to uid {_stat.st_uid}; refusing to use it");
        }

        if (Posix.SetLock(_fd, LockType.F_WRLCK, out int errno) == 0)
        {
            return true;
        }

        if (errno is not ((int)Errno.EAGAIN or (int)Errno.EACCES))
        {
            throw DaemonException.FromErrno($"cannot lock pid file {_path}", errno);
        }

        // The kernel names the holder; 0 means it let go in between, and the caller retries.
        _ = Posix.GetLockHolder(_fd, out holder, out _);
        return false;
    }

    private void WritePid(int pid)
    {
        if (Posix.Truncate(_fd, out int errno) < 0)
        {
            throw DaemonException.FromErrno($"cannot truncate pid file {_path}", errno);
        }

        byte[] content = PidFileContent.Format(pid);
        if (!Posix.WriteAll(_fd, content, out errno))
        {
            throw DaemonException.FromErrno($"cannot write pid file {_path}", errno);
        }
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

        if (PidFileDescriptor.PathStillNames(_path, _stat))
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
