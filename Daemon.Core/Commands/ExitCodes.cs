namespace Daemon;

/// <summary>
/// The exit codes of the daemon commands, after the LSB init-script conventions that
/// administrators and service managers already read.
/// </summary>
public static class ExitCodes
{
    /// <summary>Success: started, stopped, running, reloaded, or a clean stop of <c>run</c>.</summary>
    public const int Success = 0;

    /// <summary>A generic failure; for <c>status</c>: dead, but the pid file was left behind.</summary>
    public const int Failure = 1;

    /// <summary>Bad usage: an unknown command or option, or an invalid value.</summary>
    public const int Usage = 2;

    /// <summary><c>status</c>: the daemon is not running.</summary>
    public const int NotRunning = 3;

    /// <summary><c>status</c>: the state cannot be determined (an unreadable pid file, say).</summary>
    public const int Unknown = 4;

    /// <summary>The program is not installed properly: a file it needs beside it is missing.</summary>
    public const int NotInstalled = 5;

    /// <summary>
    /// <c>status</c>: the daemon is starting (it holds its pid file but is not ready yet). From the
    /// LSB range reserved for applications (150-199): scripts that test for 0 see "not yet running".
    /// </summary>
    public const int Starting = 150;

    /// <summary><c>reload</c>: the daemon is not running.</summary>
    public const int ReloadNotRunning = 7;
}
