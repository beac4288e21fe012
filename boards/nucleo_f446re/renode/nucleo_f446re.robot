*** Comments ***
tinysplit on the Nucleo-F446RE (STM32F446RE) under Renode's stm32f4 model:
the firmware built for boards/nucleo_f446re boots (clocks, UART)
and says HELLO, which carries the board name "nucleo-f446re", on sysbus.usart2.
Run by tests/boards/test_renode.py when renode-test is on PATH:
    renode-test boards/nucleo_f446re/renode/nucleo_f446re.robot \
        --variable ELF:build/nucleo_f446re/tinysplit.elf

*** Variables ***
${ELF}                        ${CURDIR}/../../../build/nucleo_f446re/tinysplit.elf
${UART}                       sysbus.usart2

*** Test Cases ***
Boots And Says Hello
    Execute Command           $elf=@${ELF}
    Execute Command           $port=3466
    Execute Command           include @${CURDIR}/nucleo_f446re.resc
    Create Terminal Tester    ${UART}    timeout=10
    Start Emulation
    Wait For Line On Uart     nucleo-f446re    treatAsRegex=false    includeUnfinishedLine=true
