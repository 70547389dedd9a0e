using System;
using Daemon.Interop;

namespace Daemon.Launching;

/// <summary>The daemon's end of the readiness pipe.</summary>
internal sealed class ReadinessWriter(int fd) : IDisposable
{
    private int _fd = fd;

    /// <summary>
    /// Marks the pipe close-on-exec: the daemon's own children must not hold it, or the launcher
    /// would wait for them too before it sees the end of file.
    /// </summary>
    public void KeepFromChildren() => _ = Posix.SetCloseOnExec(_fd, true);

    /// <summary>Sends a message; false when the launcher is gone (EPIPE) or the pipe is closed.</summary>
    public bool Send(string kind, string argument)
    {
        return _fd >= 0 && Posix.WriteAll(_fd, ReadinessMessage.Format(kind, argument), out _);
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            Posix.Close(_fd);
            _fd = -1;
        }
    }
}
