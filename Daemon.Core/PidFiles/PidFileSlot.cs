using System;

namespace Daemon.PidFiles;

/// <summary>
/// The pid file a daemon holds, which a failed restart may make it swap for a new one: one place,
/// under one lock, for the runtime that publishes and removes it and for the handover that takes
/// it back.
/// </summary>
internal sealed class PidFileSlot
{
    private readonly object _gate = new();
    private IPidFile? _current;
    private bool _closed;

    /// <summary>The pid file held now; null before it is locked, or for a daemon without one.</summary>
    public IPidFile? Current
    {
        get
        {
            lock (_gate)
            {
                return _current;
            }
        }
    }

    /// <summary>Holds <paramref name="pidFile"/> from now on.</summary>
    public void Hold(IPidFile pidFile)
    {
        lock (_gate)
        {
            _current = pidFile;
        }
    }

    /// <summary>
    /// Runs <paramref name="swap"/> with the file held now, unless the daemon is finishing; the file
    /// it returns is held from then on and the old one let go.
    /// </summary>
    public void Swap(Func<IPidFile, IPidFile?> swap)
    {
        lock (_gate)
        {
            if (_current is null || _closed)
            {
                return;
            }

            IPidFile? next = swap(_current);
            if (next is not null)
            {
                (_current as IDisposable)?.Dispose();
                _current = next;
            }
        }
    }

    /// <summary>
    /// The daemon's last word on its file: removed (it stopped), or, for a daemon that was running
    /// and died of a fault, left unlocked so that status says dead rather than never started.
    /// </summary>
    public void Close(bool leaveForStatus)
    {
        lock (_gate)
        {
            _closed = true;
            if (leaveForStatus)
            {
                (_current as IDisposable)?.Dispose();
            }
            else
            {
                _current?.Remove();
            }
        }
    }
}
