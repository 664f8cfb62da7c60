REM SikkerKey sync agent for secret {{secret}} as a Windows service, with NSSM (https://nssm.cc).
REM Run from an elevated prompt. Remove with `sikkerkey-agent uninstall --secret {{secret}}`.
nssm install {{service}} {{exe}} start --secret {{secret}}
nssm set {{service}} DisplayName {{display_name}}
nssm set {{service}} Description {{description}}
nssm set {{service}} Start SERVICE_AUTO_START
nssm set {{service}} AppEnvironmentExtra {{environment*}}
nssm set {{service}} AppStdout {{log}}
nssm set {{service}} AppStderr {{log}}
nssm set {{service}} AppExit Default Restart
nssm set {{service}} AppExit {{no_restart_codes[]}} Exit
nssm set {{service}} AppRestartDelay 10000
nssm start {{service}}
