using Daemon.Example.Hosted;
using Daemon.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

// A Generic Host with one BackgroundService, daemonized: start, stop, status, reload, run.
return new HostedDaemon(builder =>
{
    // One line per entry, timestamped like the daemon's own lines, in the daemon's log file.
    builder.Logging.ClearProviders();
    builder.Logging.AddSimpleConsole(console =>
    {
        console.SingleLine = true;
        console.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fffzzz ";
    });
    builder.Services.Configure<HeartbeatOptions>(builder.Configuration.GetSection(HeartbeatOptions.Section));
    builder.Services.AddHostedService<HeartbeatService>();
}).Main(args);
