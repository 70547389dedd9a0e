using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using Daemon.Interop;

namespace Daemon.Signals;

/// <summary>
/// The daemon's signals, through .NET's <see cref="PosixSignalRegistration"/>: SIGTERM, SIGINT and
/// SIGQUIT request a stop, SIGHUP a reload.
/// </summary>
internal sealed class DaemonSignals : IDisposable
{
    private static readonly int[] _inheritedDispositions = { 1 /* HUP */, 2 /* INT */, 3 /* QUIT */, 10 /* USR1 */, 12 /* USR2 */, 15 /* TERM */ };

    private readonly List<PosixSignalRegistration> _registrations = new();

    private DaemonSignals()
    {
    }

    /// <summary>
    /// Undoes what the process inherited: a blocked signal mask, and "ignore" dispositions (a
    /// launcher under nohup ignores SIGHUP), which would otherwise silently win over the handlers.
    /// </summary>
    public static void ResetInherited()
    {
        Posix.UnblockAllSignals();
        foreach (int signal in _inheritedDispositions)
        {
            if (Posix.IsIgnored(signal))
            {
                Posix.SetDefaultAction(signal);
            }
        }
    }

    /// <summary>Registers the handlers: <paramref name="stop"/> gets the signal's name.</summary>
    public static DaemonSignals Register(Action<string> stop, Action reload)
    {
        var signals = new DaemonSignals();
        signals.Add(PosixSignal.SIGTERM, () => stop("SIGTERM"));
        signals.Add(PosixSignal.SIGINT, () => stop("SIGINT"));
        signals.Add(PosixSignal.SIGQUIT, () => stop("SIGQUIT"));
        signals.Add(PosixSignal.SIGHUP, reload);
        return signals;
    }

    public void Dispose()
    {
        foreach (PosixSignalRegistration registration in _registrations)
        {
            registration.Dispose();
        }

        _registrations.Clear();
    }

    private void Add(PosixSignal signal, Action action)
    {
        _registrations.Add(PosixSignalRegistration.Create(signal, context =>
        {
            // Cancel the runtime's default (terminate): the daemon stops in order instead.
            context.Cancel = true;
            action();
        }));
    }
}
