using System;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Daemon.Commands;
using Daemon.Interop;
using Daemon.Launching;
using Daemon.Options;
using Daemon.Runtime;
using Daemon.Serving;

namespace Daemon;

/// <summary>
/// A Unix daemon: subclass it, override <see cref="RunAsync"/> (or <see cref="Run"/>) with the main
/// loop, and call <see cref="Main"/> from <c>Program.cs</c>. The program then answers
/// <c>start|stop|restart|status|reload|run</c> the way an administrator expects of a C daemon.
/// </summary>
/// <remarks>
/// <para><c>start</c> daemonizes without fork(): the program re-executes itself as a detach stage
/// that calls setsid() and starts the daemon, then exits. The daemon sets its umask, changes to
/// <c>/</c>, reads /dev/null, appends its output to the log file, keeps no descriptor it
/// inherited, locks its pid file, runs <see cref="OnStartupAsync"/>, tells the launcher it is
/// ready, and runs <see cref="Run"/> until SIGTERM or SIGINT cancels its token.</para>
/// <para><c>run</c> does the same in the foreground, for systemd (<c>Type=notify</c>) and containers.</para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.NonPublicMethods)]
public abstract partial class DaemonBase
{
    private readonly DaemonSystem _system;
    private readonly DaemonOptionSet _optionSet = new();
    private readonly DaemonPaths _paths;
    private bool _restarting;
    private Command? _helpTopic;

    /// <summary>Creates a daemon named after the program (its executable or entry assembly).</summary>
    protected DaemonBase()
        : this(null, null)
    {
    }

    /// <summary>Creates a daemon with the given name, from which the default file names derive.</summary>
    /// <param name="name">The daemon's name, such as <c>echod</c>.</param>
    protected DaemonBase(string name)
        : this(name, null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
    }

    /// <summary>For testing: a daemon that speaks to the given system.</summary>
    internal DaemonBase(string? name, DaemonSystem? system)
    {
        NativeLibraries.Install();
        _system = system ?? DaemonSystem.CreateReal();
        Name = name ?? ProgramName();
        _paths = DaemonPaths.ForCurrentUser(Name, _system.IsRoot, _system.Home);
    }

    /// <summary>The daemon's name, used in messages, log lines and default file names.</summary>
    public string Name { get; }

    /// <summary>The options of this daemon; the command line fills them in <see cref="Main"/>.</summary>
    public DaemonOptions Options { get; } = new();

    /// <summary>The pid file the commands use: <see cref="DaemonOptions.PidFile"/> or the default.</summary>
    public string PidFilePath => ResolveFiles(background: true).PidFile!;

    /// <summary>The log file the daemon writes: <see cref="DaemonOptions.LogFile"/> or the default.</summary>
    public string LogFilePath => ResolveFiles(background: true).LogFile!;

    /// <summary>
    /// Parses <paramref name="args"/> and carries out the command, returning the exit code and
    /// setting it as <see cref="Environment.ExitCode"/> too. <c>Program.cs</c> is then one line:
    /// <c>return new MyDaemon().Main(args);</c> (without <c>return</c>, the program exits with the
    /// same code).
    /// </summary>
    /// <param name="args">The program's arguments: a command and options.</param>
    /// <returns>The exit code, after the LSB conventions of <see cref="ExitCodes"/>.</returns>
    /// <exception cref="InvalidOperationException">Main was already called on this instance.</exception>
    public int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (_optionSet.Count > 0)
        {
            throw new InvalidOperationException("Main runs once per daemon instance");
        }

        // A Program.cs that drops the value (no return) must still exit 1 on a failed start, 3 for status.
        int exitCode = Execute(args);
        Environment.ExitCode = exitCode;
        return exitCode;
    }

    private int Execute(string[] args)
    {
        Stage stage = Stage.OfThisProcess();
        try
        {
            int? refused = Parse(args, stage, out Command command, out int commandAt);
            if (refused is not null)
            {
                return refused.Value;
            }

            if (command == Command.Restart && stage.Kind == StageKind.Command)
            {
                // The daemon that restart starts is a started daemon: ps and systemctl status show it so.
                SelfExec.StartVerbAt(args, commandAt);
            }

            return stage.Kind switch
            {
                StageKind.Detach => DetachStage.Run(stage, [.. Options.KeepDescriptors]),
                StageKind.Daemon => CreateRuntime(background: true, stage.TakeOver).Execute(stage.Launcher()),
                StageKind.Supervised => CreateRuntime(background: false, stage.TakeOver).Execute(stage.Launcher()),
                _ => command == Command.Version ? Version() : CommandTable.Of(command).Run(this),
            };
        }
        finally
        {
            // The copies of 1 and 2 the commands wrote through: nothing writes to them any more.
            _system.Release();
        }
    }

    /// <summary>
    /// Reads the command line into <see cref="Options"/>; null when the command can run, otherwise
    /// the exit code of a usage error (or of <c>--user</c>/<c>--group</c> without Mono.Posix's
    /// native helper).
    /// </summary>
    private int? Parse(string[] args, Stage stage, out Command command, out int commandAt)
    {
        try
        {
            CommandLine.AddFrameworkOptions(_optionSet, this);
            ConfigureOptions(_optionSet);
            command = CommandLine.Parse(args, _optionSet, out _helpTopic, out commandAt);
        }
        catch (UsageException e)
        {
            command = Command.Help;
            commandAt = -1;
            return stage.Refuse(e.Message)
                ?? Fail(e.ShowCommands ? $"{e.Message}\n{CommandTable.UsageLine(Name)}" : $"{e.Message} (try '{Name} --help')", ExitCodes.Usage);
        }

        if (stage.Kind != StageKind.Command || command is Command.Help or Command.Version)
        {
            return null;
        }

        // --user and --group need the user and group databases, read through Mono.Posix: without its
        // native helper, say so before anything starts. No other command loads the helper.
        if (command is Command.Start or Command.Restart or Command.Run
            && (Options.User is not null || Options.Group is not null)
            && _system.LoadUserDatabase() is { } missing)
        {
            return Fail(missing, ExitCodes.NotInstalled);
        }

        return CheckFilePaths(command) is { } problem ? Fail(problem, ExitCodes.Usage) : null;
    }

    /// <summary>
    /// Starts the daemon in the background and waits until it is ready: 0 when it started or
    /// was already running, 1 when it failed, with its one-line reason on standard error.
    /// </summary>
    /// <returns>The exit code.</returns>
    public virtual int Start() => Guarded("start", StartCore);

    /// <summary>
    /// Stops the daemon: SIGTERM, then waits for its exit up to the stop timeout, then fails or,
    /// with <see cref="DaemonOptions.Force"/>, sends SIGKILL. 0 when stopped or not running.
    /// </summary>
    /// <returns>The exit code.</returns>
    public virtual int Stop() => Guarded("stop", StopCore);

    /// <summary>
    /// Restarts the daemon without refusing a connection and without a moment with nothing running:
    /// the next generation starts beside the running one and runs <see cref="OnStartupAsync"/>,
    /// takes over its listeners (see <see cref="Listen"/>) and its pid file, and only then does the
    /// running one stop accepting and drain; the next one's <see cref="OnActivateAsync"/> and main
    /// loop begin once it has exited (see <see cref="OverlapOnRestart"/>). If the next generation
    /// fails, the running one goes on and restart exits 1. One that does not answer on its control
    /// socket is stopped, then started; one that is not running is started. Under systemd (a
    /// <c>run</c> daemon in a service), it is for the unit's <c>ExecReload=</c>.
    /// </summary>
    /// <returns>The exit code, as <see cref="Start"/>'s.</returns>
    public virtual int Restart()
    {
        _restarting = true;
        try
        {
            int? handedOver = OperatingSystem.IsLinux() ? Guarded<int?>("restart", RestartByHandover, ExitCodes.Failure) : null;
            if (handedOver is not null)
            {
                return handedOver.Value;
            }

            int stopped = Stop();
            return stopped == ExitCodes.Success ? Start() : stopped;
        }
        finally
        {
            _restarting = false;
        }
    }

    /// <summary>
    /// Tells whether the daemon runs: 0 running, 1 dead but its pid file is left, 3 not running,
    /// 4 unknown, 150 starting (not ready yet).
    /// </summary>
    /// <returns>The exit code.</returns>
    public virtual int Status() => Guarded("status", StatusCore, ExitCodes.Unknown);

    /// <summary>Sends SIGHUP to the daemon: 0 when sent, 7 when it is not running.</summary>
    /// <returns>The exit code.</returns>
    public virtual int Reload() => Guarded("reload", ReloadCore);

    /// <summary>
    /// Runs the daemon in the foreground without detaching (systemd, containers): the same startup
    /// hook and main loop, sd_notify when NOTIFY_SOCKET is set, a pid file only when one is given.
    /// 0 after a clean stop, 1 on failure.
    /// </summary>
    /// <returns>The exit code.</returns>
    public virtual int RunInForeground() => CreateRuntime(background: false).Execute(null);

    /// <summary>Adds the subclass's own options, such as <c>--port</c>; <c>--help</c> lists them.</summary>
    /// <param name="options">The option set to add to.</param>
    protected virtual void ConfigureOptions(DaemonOptionSet options)
    {
    }

    /// <summary>
    /// The startup hook: runs inside the daemon before it is declared ready, still with the
    /// caller's privileges. Open listeners, files and connections here. If it throws, <c>start</c>
    /// fails and prints the exception's message; a <see cref="DaemonException"/>'s message is
    /// shown as it is.
    /// </summary>
    /// <param name="cancellationToken">Cancelled when a stop signal arrives during startup.</param>
    /// <returns>A task that completes when the daemon is ready to serve.</returns>
    protected virtual Task OnStartupAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// The second half of startup, for what only one generation may do at a time: start the work
    /// (timers, consumers, background services), open a device or take a lease that the running
    /// generation still holds. Runs after <see cref="OnStartupAsync"/> and before the daemon is
    /// declared ready, still with the caller's privileges. On a <c>restart</c>, the next generation
    /// runs <see cref="OnStartupAsync"/> while the running one still works, and this hook only once
    /// the running one has exited (see <see cref="OverlapOnRestart"/>): whatever can fail (reading
    /// and checking the configuration, binding) belongs in <see cref="OnStartupAsync"/>, so that a
    /// broken configuration fails the restart and leaves the running generation as it was. The
    /// default does nothing.
    /// </summary>
    /// <param name="cancellationToken">Cancelled when a stop signal arrives during startup.</param>
    /// <returns>A task that completes when the daemon is ready to run its main loop.</returns>
    protected virtual Task OnActivateAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// False (the default): on a <c>restart</c>, the next generation's <see cref="OnActivateAsync"/>
    /// and main loop begin only once the running generation has stopped and exited (within
    /// <c>--stop-timeout</c>; <c>restart --force</c> kills one that outlives it), so two main loops
    /// never run at once. Its listeners are handed over all the same: connections wait in the
    /// listen queue meanwhile, none is refused. True: they begin as soon as the handover is
    /// committed, while the running generation drains its open connections, for servers whose
    /// connections are independent of each other (the shortest pause in service).
    /// </summary>
    protected virtual bool OverlapOnRestart => false;

    /// <summary>
    /// Returns a listening socket for <paramref name="endpoint"/>, to call from
    /// <see cref="OnStartupAsync"/>: on a zero-downtime <c>restart</c>, the socket the running
    /// daemon listened on under <paramref name="name"/> (or, failing the name, on the same local
    /// address), so no connection is refused; otherwise one bound and listening now. TCP and Unix
    /// stream sockets; a stale Unix socket file is replaced, an inherited one never touched. The
    /// sockets got here are what this daemon hands over at the next restart.
    /// </summary>
    /// <param name="name">A name for the listener, unique in this daemon, such as <c>http</c>.</param>
    /// <param name="endpoint">Where to listen, such as <c>new IPEndPoint(IPAddress.Loopback, 8080)</c>.</param>
    /// <param name="backlog">The listen backlog for a fresh socket.</param>
    /// <returns>The listening socket; the daemon owns it.</returns>
    /// <exception cref="DaemonException">The endpoint cannot be bound (in use, no permission...).</exception>
    /// <exception cref="InvalidOperationException">Called outside the daemon (not from its startup hook).</exception>
    protected Socket Listen(string name, EndPoint endpoint, int backlog = 512)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(endpoint);
        DaemonRuntime runtime = Runtime ?? throw new InvalidOperationException("Listen is for the startup hook of a running daemon");
        return runtime.Listeners.Listen(name, endpoint, backlog, runtime.Log);
    }

    /// <summary>
    /// <see cref="Listen"/> for a server that takes a listening descriptor and closes it itself,
    /// such as Kestrel's <c>ListenHandle</c>: a close-on-exec copy of the socket's descriptor. The
    /// daemon keeps the socket itself, to hand it over at the next <c>restart</c>.
    /// </summary>
    /// <param name="name">A name for the listener, unique in this daemon, such as <c>http</c>.</param>
    /// <param name="endpoint">Where to listen.</param>
    /// <returns>A descriptor the server owns.</returns>
    /// <exception cref="DaemonException">The endpoint cannot be bound, or the copy cannot be made.</exception>
    protected ulong ListenDescriptor(string name, EndPoint endpoint)
    {
        Socket socket = Listen(name, endpoint);
        int copy = Posix.Duplicate((int)socket.Handle);
        return copy >= 0 ? (ulong)copy : throw new DaemonException($"cannot copy the listener on {endpoint}: out of descriptors");
    }

    /// <summary>
    /// True once this daemon handed its listeners over to the next generation on a zero-downtime
    /// <c>restart</c>: its stopping token is cancelled; finish the open connections, but leave the
    /// queued ones to the next generation (do not drain the accept queue) and never shut a listener
    /// down, since the next generation holds the same sockets.
    /// </summary>
    protected bool HandedOver => Runtime?.Successor > 0;

    /// <summary>
    /// Serves the connections of <paramref name="listener"/> (from <see cref="Listen"/>) with
    /// <paramref name="handler"/>, one call per connection, until <paramref name="stoppingToken"/>
    /// fires; call it from <see cref="RunAsync"/> and await it. Out of file descriptors, accepting
    /// pauses (open connections go on being served, and a reserve is kept for the runtime) and
    /// resumes as connections close. At stop, the connections already queued are accepted too,
    /// and each connection's input ends once its client is quiet: the handler's next receive
    /// returns 0 after what the client sent, so every client gets its answer. After a
    /// <c>restart</c> that handed the listener over, the queue is the next generation's, and the
    /// open connections are served until their clients close them. Either way, the handler's token
    /// fires at the drain deadline, half the stop timeout after the stop request, and the
    /// connections still open are shut down then (their clients get end-of-file). The listener is never shut down (a next generation
    /// may hold the same socket): this daemon closes its own descriptor of it once it stops accepting.
    /// </summary>
    /// <param name="listener">A listening socket from <see cref="Listen"/>.</param>
    /// <param name="handler">
    /// Serves one connection, whose socket it may use until it returns (the server closes it then);
    /// its token fires at the drain deadline. An exception ends that connection and is logged.
    /// </param>
    /// <param name="stoppingToken">The main loop's token: accepting ends when it fires.</param>
    /// <returns>A task that completes once accepting has ended and every connection is closed.</returns>
    /// <exception cref="DaemonException">Accepting failed for good (the socket is not listening...).</exception>
    /// <exception cref="InvalidOperationException">Called outside the daemon (not from its main loop).</exception>
    protected Task ServeAsync(Socket listener, Func<Socket, CancellationToken, Task> handler, CancellationToken stoppingToken)
    {
        ArgumentNullException.ThrowIfNull(listener);
        ArgumentNullException.ThrowIfNull(handler);
        DaemonRuntime runtime = Runtime ?? throw new InvalidOperationException("ServeAsync is for the main loop of a running daemon");
        var server = new ConnectionServer(listener, handler, runtime.Log, Options.StopTimeout / 2, () => runtime.Listeners.IsHandedOver(listener));
        return server.RunAsync(stoppingToken);
    }

    /// <summary>
    /// The main loop. Returns when <paramref name="stoppingToken"/> is cancelled (SIGTERM, SIGINT or
    /// SIGQUIT); an exception is logged with its stack trace and the daemon exits with code 1.
    /// The default runs <see cref="RunAsync"/> to completion.
    /// </summary>
    /// <param name="stoppingToken">Cancelled when the daemon is asked to stop.</param>
    protected virtual void Run(CancellationToken stoppingToken) => RunAsync(stoppingToken).GetAwaiter().GetResult();

    /// <summary>The main loop, for asynchronous code; override this or <see cref="Run"/>.</summary>
    /// <param name="stoppingToken">Cancelled when the daemon is asked to stop.</param>
    /// <returns>A task that completes when the daemon has stopped.</returns>
    protected virtual Task RunAsync(CancellationToken stoppingToken) =>
        throw new NotImplementedException($"{GetType().Name} overrides neither Run nor RunAsync");

    /// <summary>
    /// Called on SIGHUP (<c>reload</c>) after the log file was reopened: re-read configuration here.
    /// An exception is logged and the daemon goes on.
    /// </summary>
    protected virtual void OnReload()
    {
    }

    /// <summary>
    /// The health check behind the systemd watchdog (<c>run</c> with <c>WatchdogSec=</c>): while it
    /// returns true, the daemon sends WATCHDOG=1 every half interval; once it returns false or
    /// throws, the pings stop for good (said once in the log) and systemd acts as the unit says.
    /// Called on the thread pool, so a starved or deadlocked pool stops the pings too. Default: true.
    /// </summary>
    /// <returns>True while the daemon can do its work.</returns>
    protected virtual bool IsHealthy() => true;

    /// <summary>
    /// Called after each line the daemon logs, the framework's lifecycle lines (starting, ready,
    /// reloading, stopping, stopped, failures) and <see cref="Log(string)"/>'s alike, so a subclass
    /// can forward it to another logger. Runs on whichever thread logged the line, signal handlers
    /// included; an exception is caught and noted in the log.
    /// </summary>
    /// <param name="severity">How much the line matters: failures are warnings or errors.</param>
    /// <param name="message">The line, without its timestamp, pid and severity.</param>
    protected virtual void OnLogged(LogSeverity severity, string message)
    {
    }

    /// <summary>Writes a timestamped line of information, with the pid, to the daemon's log.</summary>
    /// <param name="message">The line.</param>
    protected void Log(string message) => Log(LogSeverity.Information, message);

    /// <summary>
    /// Writes a timestamped line with the pid to the daemon's log; a warning or an error says so
    /// after the pid (<c>NAME[PID]: warning: MESSAGE</c>). Before the daemon runs, the line goes to
    /// standard error. Under <c>run</c> with the systemd journal as standard error, each line
    /// starts with its priority instead (<c>&lt;4&gt;warning: MESSAGE</c>), and the journal adds
    /// the time, the name and the pid.
    /// </summary>
    /// <param name="severity">How much the line matters.</param>
    /// <param name="message">The line.</param>
    protected void Log(LogSeverity severity, string message)
    {
        if (Runtime is { } runtime)
        {
            runtime.Log.Line(severity, message);
        }
        else
        {
            _system.Error.WriteLine($"{Name}: {Logging.DaemonLog.Prefix(severity)}{message}");
        }
    }

    /// <summary>
    /// True when the process's standard output is the systemd journal: <c>run</c> in a unit whose
    /// output goes to the journal (JOURNAL_STREAM names descriptor 1), without <c>--log-file</c>.
    /// A logger that writes there should start each line with its sd-daemon(3) priority
    /// (<c>&lt;3&gt;</c> error, <c>&lt;4&gt;</c> warning, <c>&lt;6&gt;</c> information) and leave the
    /// timestamp to the journal.
    /// </summary>
    protected static bool StandardOutputIsJournal => Logging.JournalStream.Is(Posix.StandardOutput);

    /// <summary>The running daemon, inside the daemon process: what <see cref="Listen"/> and <see cref="Log(LogSeverity, string)"/> reach.</summary>
    internal DaemonRuntime? Runtime { get; private set; }

    /// <summary>
    /// The daemon's files, decided once: for <c>start</c> and every command that finds a daemon,
    /// the options or their defaults; for <c>run</c> (<paramref name="background"/> false), only
    /// what the options name.
    /// </summary>
    internal DaemonFiles ResolveFiles(bool background) => DaemonFiles.Resolve(Options, _paths, background);

    /// <summary>
    /// The runtime of this daemon, handed what it needs once (hooks, options, files), never its
    /// owner; the daemon's <see cref="Listen"/> and <see cref="Log(LogSeverity, string)"/> reach it.
    /// </summary>
    /// <param name="background">True for <c>start</c>'s daemon stage, false for <c>run</c>.</param>
    /// <param name="takeOver">True for a restart's new generation.</param>
    /// <param name="steps">For testing: the system calls; the real ones otherwise.</param>
    /// <param name="logLines">For testing: where log lines go as well.</param>
    internal DaemonRuntime CreateRuntime(bool background, bool takeOver = false, IDaemonSteps? steps = null, TextWriter? logLines = null)
    {
        var hooks = new DaemonHooks(
            Name,
            HasMainLoop ? null : $"{GetType().Name} overrides neither Run nor RunAsync: it has no main loop",
            OnStartupAsync,
            OnActivateAsync,
            OverlapOnRestart,
            Run,
            OnReload,
            IsHealthy,
            OnLogged,
            _system.KeepCallerStreams,
            _system.Error);
        return Runtime = new DaemonRuntime(hooks, Options, ResolveFiles(background), background, takeOver, steps ?? DaemonSteps.Instance, logLines);
    }

    /// <summary>True when the subclass overrides <see cref="Run"/> or <see cref="RunAsync"/>.</summary>
    private bool HasMainLoop =>
        Overrides(nameof(Run), typeof(void)) || Overrides(nameof(RunAsync), typeof(Task));

    private bool Overrides(string method, Type returns)
    {
        // DaemonBase keeps its subclasses' non-public methods for trimming and Native AOT (see
        // the class attribute), so this look-up sees the override wherever it is declared.
        MethodInfo? found = GetType().GetMethod(method, BindingFlags.Instance | BindingFlags.NonPublic, [typeof(CancellationToken)]);
        return found is not null && found.ReturnType == returns && found.DeclaringType != typeof(DaemonBase);
    }

    /// <summary>
    /// Refuses file paths that cannot work: one whose name had bytes that are not UTF-8 (the
    /// runtime turned them into U+FFFD, so it is not the file meant), or the pid file and the log
    /// being one file (the log would overwrite the pid, and stop would refuse forever).
    /// </summary>
    private string? CheckFilePaths(Command command)
    {
        (string? pidFile, string? logFile) = ResolveFiles(background: command != Command.Run);
        foreach (string? path in new[] { pidFile, logFile })
        {
            if (path is not null && Files.PathText.MayBeMangled(path))
            {
                return $"path {Files.PathText.Quote(path)} is not valid UTF-8 (or holds U+FFFD); name the file by a UTF-8 path";
            }
        }

        if (pidFile is null || logFile is null)
        {
            return null;
        }

        bool same = pidFile == logFile
            || (OperatingSystem.IsLinux()
                && Posix.Lstat(pidFile, out FileStatus a, out _) == 0
                && Posix.Lstat(logFile, out FileStatus b, out _) == 0
                && a.IsSameFile(b));
        return same ? $"the pid file and the log file are the same file ({Files.PathText.Quote(pidFile)}); give them different paths" : null;
    }

    /// <summary>
    /// Prints the usage, the commands (or, after a command, <c>COMMAND --help</c>, that command
    /// alone) and every option with the default in effect, on stdout.
    /// </summary>
    internal int Help()
    {
        var help = new StringBuilder();
        if (_helpTopic is { } command)
        {
            CommandInfo info = CommandTable.Of(command);
            help.Append($"Usage: {Name} {info.Word} [OPTIONS]\n\n{info.Summary}\n");
        }
        else
        {
            help.Append($"{CommandTable.UsageLine(Name)}\n\n");
            help.Append("Commands:\n");
            foreach (CommandInfo info in CommandTable.All)
            {
                help.Append(CultureInfo.InvariantCulture, $"  {info.Word,-9} {info.Summary}\n");
            }
        }

        help.Append("\nOptions:\n");
        _optionSet.AppendHelp(help, 0, _optionSet.FrameworkCount);
        if (_optionSet.Count > _optionSet.FrameworkCount)
        {
            help.Append($"\nOptions of {Name}:\n");
            _optionSet.AppendHelp(help, _optionSet.FrameworkCount, _optionSet.Count - _optionSet.FrameworkCount);
        }

        _system.Output.Write(help.ToString());
        return ExitCodes.Success;
    }

    /// <summary>Prints the program's name and version (the entry assembly's informational version).</summary>
    private int Version()
    {
        Assembly? entry = Assembly.GetEntryAssembly();
        string version = entry?.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? entry?.GetName().Version?.ToString()
            ?? "unknown";
        _system.Output.WriteLine($"{Name} {version}");
        return ExitCodes.Success;
    }

    private static string ProgramName()
    {
        // An apphost or Native AOT binary has no extension; "Daemon.Example" is a whole name.
        string name = Path.GetFileName(Environment.ProcessPath ?? "");
        if (name.EndsWith(".exe", StringComparison.OrdinalIgnoreCase))
        {
            name = name[..^4];
        }

        if (name.Length == 0 || name == "dotnet")
        {
            name = Assembly.GetEntryAssembly()?.GetName().Name ?? "daemon";
        }

        return name;
    }
}
