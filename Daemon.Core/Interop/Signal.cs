namespace Daemon.Interop;

/// <summary>The signal numbers the library sends or resets: one home, checked against the C headers by PosixTests.</summary>
internal static class Signal
{
    public const int SIGHUP = 1;
    public const int SIGINT = 2;
    public const int SIGQUIT = 3;
    public const int SIGKILL = 9;
    public const int SIGUSR1 = 10;
    public const int SIGUSR2 = 12;
    public const int SIGTERM = 15;
    public const int SIGCONT = 18;
}
